//! Handlers: any `tower::Service<Message>`; plain async functions through [`handler_fn`].

use std::future::Future;
use std::task::{Context, Poll};

use futures::TryFutureExt;
use futures::future::{MapErr, MapOk};
use tower::Service;

use crate::error::Error;
use crate::message::{Message, Outcome};

/// A type-erased handler stack: cloneable, `Send + Sync`, what routers and workers hold.
pub type BoxHandler = tower::util::BoxCloneSyncService<Message, Outcome, Error>;

/// Boxes any cloneable handler service whose error converts into [`Error`].
pub fn boxed<S>(service: S) -> BoxHandler
where
    S: Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    BoxHandler::new(service.map_err(Into::into))
}

/// A handler made from an async function `Fn(Message) -> Result<R, E>`, where `R` is `()`
/// or an [`Outcome`] and `E` converts into [`Error`].
///
/// ```
/// use gregor_handler::{handler_fn, Error, Message, Outcome};
/// use tower::ServiceExt;
///
/// async fn on_order(msg: Message) -> Result<(), Error> {
///     let order: gregor_event::OrderEvent = msg.decode()?;
///     println!("order {} for {}", order.order_id, order.user_id);
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let msg = Message::new("t", 0, 0).with_decode_error("not JSON");
/// let err = handler_fn(on_order).oneshot(msg).await.unwrap_err();
/// assert!(!err.is_retriable());
/// # });
/// ```
pub fn handler_fn<F>(f: F) -> HandlerFn<F> {
    HandlerFn { f }
}

/// See [`handler_fn`].
#[derive(Clone, Copy)]
pub struct HandlerFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for HandlerFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerFn")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}

impl<F, Fut, R, E> Service<Message> for HandlerFn<F>
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Into<Outcome>,
    E: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = MapErr<MapOk<Fut, fn(R) -> Outcome>, fn(E) -> Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        (self.f)(msg)
            .map_ok(Into::into as fn(R) -> Outcome)
            .map_err(Into::into as fn(E) -> Error)
    }
}
