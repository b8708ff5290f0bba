use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Service, ServiceExt};

use super::store::DedupeStore;
use crate::error::Error;
use crate::message::{Message, Outcome};

/// The service [`super::DedupeLayer`] builds.
#[derive(Clone)]
pub struct Dedupe<S> {
    pub(super) inner: S,
    pub(super) store: Arc<dyn DedupeStore>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Dedupe<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedupe")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The dedupe key of a message: `<source>/<id>` of its event.
pub(crate) fn key(msg: &Message) -> Option<String> {
    msg.event_arc().map(|e| format!("{}/{}", e.source, e.id))
}

impl<S> Service<Message> for Dedupe<S>
where
    S: Service<Message, Response = Outcome> + Clone + Send + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    type Response = Outcome;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Outcome, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let clone = self.inner.clone();
        let svc = std::mem::replace(&mut self.inner, clone);
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            let Some(key) = key(&msg) else {
                return svc.oneshot(msg).await.map_err(Into::into);
            };
            if store.seen(&key).await.map_err(Error::retriable)? {
                tracing::debug!(topic = msg.topic(), offset = msg.offset(), %key, "duplicate");
                return Ok(Outcome::Duplicate);
            }
            let outcome = svc.oneshot(msg).await.map_err(Into::into)?;
            if outcome == Outcome::Processed {
                store.remember(&key).await.map_err(Error::retriable)?;
            }
            Ok(outcome)
        })
    }
}
