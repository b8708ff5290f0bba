//! `Router`: one handler per event type, and a fallback for the types nobody handles.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either, Ready, ready};
use tower::Service;

use crate::error::Error;
use crate::handler::{BoxHandler, boxed};
use crate::message::{Message, Outcome};

/// What the router does with an event type no route names.
#[derive(Clone)]
#[non_exhaustive]
pub enum Fallback {
    /// Count it ([`Router::skipped`]) and answer [`Outcome::Skipped`]: the record is committed.
    Skip,
    /// Fail with the fatal [`Error::UnknownEventType`]: the dead-letter layer publishes it.
    DeadLetter,
    /// Hand it to this handler.
    Handler(BoxHandler),
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fallback::Skip => "Skip",
            Fallback::DeadLetter => "DeadLetter",
            Fallback::Handler(_) => "Handler",
        })
    }
}

/// Routes each message to the handler of its event type (the classic `OrderHandler` switch).
///
/// The event type is the decoded event's `type` (or the `event-type` header when the stack
/// has no decoder). A record that failed to decode is not routed: the router fails with the
/// fatal [`Error::Deserialization`], which the dead-letter layer publishes.
///
/// ```
/// use gregor_handler::{handler_fn, Error, Fallback, Message, Outcome, Router};
/// use tower::ServiceExt;
///
/// async fn created(_: Message) -> Result<(), Error> { Ok(()) }
/// async fn cancelled(_: Message) -> Result<(), Error> { Ok(()) }
///
/// let router = Router::new()
///     .route("order.created", handler_fn(created))
///     .route("order.cancelled", handler_fn(cancelled))
///     .fallback(Fallback::Skip);
/// let skipped = router.skipped();
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let event = gregor_event::Event::new("order.refunded", "shop", serde_json::json!({}));
/// let out = router.oneshot(Message::new("t", 0, 0).with_event(event)).await?;
/// assert_eq!(out, Outcome::Skipped);
/// assert_eq!(skipped.get(), 1);
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Router {
    routes: HashMap<String, BoxHandler>,
    fallback: Fallback,
    skipped: SkipCounter,
}

/// How many messages a router skipped (shared by its clones).
#[derive(Clone, Debug, Default)]
pub struct SkipCounter(Arc<AtomicU64>);

impl SkipCounter {
    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Router {
    fn default() -> Router {
        Router::new()
    }
}

impl Router {
    /// No routes; the fallback is [`Fallback::Skip`].
    pub fn new() -> Router {
        Router {
            routes: HashMap::new(),
            fallback: Fallback::Skip,
            skipped: SkipCounter::default(),
        }
    }

    /// Sends `event_type` to `handler` (replacing an earlier route for it).
    pub fn route<S>(mut self, event_type: impl Into<String>, handler: S) -> Router
    where
        S: Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
        S::Error: Into<Error>,
        S::Future: Send + 'static,
    {
        self.routes.insert(event_type.into(), boxed(handler));
        self
    }

    /// What happens to event types without a route (default [`Fallback::Skip`]).
    pub fn fallback(mut self, fallback: Fallback) -> Router {
        self.fallback = fallback;
        self
    }

    /// The event types routed.
    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// The counter of skipped messages.
    pub fn skipped(&self) -> SkipCounter {
        self.skipped.clone()
    }
}

/// The future of [`Router`].
pub type RouterFuture =
    Either<BoxFuture<'static, Result<Outcome, Error>>, Ready<Result<Outcome, Error>>>;

impl Service<Message> for Router {
    type Response = Outcome;
    type Error = Error;
    type Future = RouterFuture;

    /// Ready when every route (and a fallback handler) is ready.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut pending = false;
        for svc in self.routes.values_mut() {
            match svc.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if let Fallback::Handler(svc) = &mut self.fallback {
            match svc.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        if msg.is_poison() {
            let err = msg
                .event()
                .err()
                .unwrap_or_else(|| Error::validation("undecodable record"));
            return Either::Right(ready(Err(err)));
        }
        if let Some(svc) = msg.event_type().and_then(|t| self.routes.get_mut(t)) {
            return Either::Left(svc.call(msg));
        }
        match &mut self.fallback {
            Fallback::Handler(svc) => Either::Left(svc.call(msg)),
            Fallback::Skip => {
                self.skipped.0.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    event_type = msg.event_type().unwrap_or("(none)"),
                    "no route: skipped"
                );
                Either::Right(ready(Ok(Outcome::Skipped)))
            }
            Fallback::DeadLetter => {
                let event_type = msg.event_type().unwrap_or("(none)").to_owned();
                Either::Right(ready(Err(Error::UnknownEventType { event_type })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use crate::handler::handler_fn;
    use gregor_event::Event;
    use std::sync::Mutex;
    use tower::ServiceExt;

    fn msg(event_type: &str) -> Message {
        Message::new("commerce.orders", 0, 7).with_event(Event::new(
            event_type,
            "test",
            serde_json::json!({}),
        ))
    }

    fn recording(seen: &Arc<Mutex<Vec<String>>>, name: &'static str) -> BoxHandler {
        let seen = Arc::clone(seen);
        boxed(handler_fn(move |m: Message| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock()
                    .unwrap()
                    .push(format!("{name}:{}", m.event_type().unwrap_or("")));
                Ok::<_, Error>(())
            }
        }))
    }

    #[tokio::test]
    async fn routes_by_event_type() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("order.created", recording(&seen, "created"))
            .route("order.updated", recording(&seen, "updated"))
            .route("order.cancelled", recording(&seen, "cancelled"));
        for t in ["order.updated", "order.created", "order.cancelled"] {
            let out = router.clone().oneshot(msg(t)).await.unwrap();
            assert_eq!(out, Outcome::Processed);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "updated:order.updated",
                "created:order.created",
                "cancelled:order.cancelled"
            ]
        );
    }

    #[tokio::test]
    async fn unknown_types_follow_the_fallback() {
        let skip = Router::new().route("order.created", recording(&Arc::default(), "c"));
        let counter = skip.skipped();
        assert_eq!(
            skip.clone().oneshot(msg("order.refunded")).await.unwrap(),
            Outcome::Skipped
        );
        assert_eq!(counter.get(), 1);

        let dl = skip.clone().fallback(Fallback::DeadLetter);
        let err = dl.oneshot(msg("order.refunded")).await.unwrap_err();
        assert!(
            matches!(err, Error::UnknownEventType { ref event_type } if event_type == "order.refunded")
        );
        assert_eq!(err.class(), ErrorClass::Fatal);

        let seen = Arc::new(Mutex::new(Vec::new()));
        let other = skip.fallback(Fallback::Handler(recording(&seen, "other")));
        other.oneshot(msg("order.refunded")).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["other:order.refunded"]);
    }

    #[tokio::test]
    async fn poison_is_a_fatal_deserialization_error_not_a_route() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut h = gregor_event::Headers::new();
        h.set_event_type("order.created");
        let router = Router::new().route("order.created", recording(&seen, "created"));
        let poison = Message::new("t", 1, 2)
            .with_headers(h)
            .with_decode_error("expected value at line 1 column 1");
        let err = router.oneshot(poison).await.unwrap_err();
        assert!(
            matches!(err, Error::Deserialization { offset: 2, .. }),
            "{err}"
        );
        assert!(seen.lock().unwrap().is_empty());
    }
}
