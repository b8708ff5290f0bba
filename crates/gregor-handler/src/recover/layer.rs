use tower::Layer;

use super::service::Recover;

/// Turns panics of the inner service (in `call` or in its future) into errors.
///
/// ```
/// use gregor_handler::{handler_fn, recover::RecoverLayer, Error, Message};
/// use tower::{Layer, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let svc = RecoverLayer::new().layer(handler_fn(|_msg: Message| async {
///     if true { panic!("boom") }
///     Ok::<(), Error>(())
/// }));
/// let err = svc.oneshot(Message::new("t", 0, 0)).await.unwrap_err();
/// assert!(matches!(err, Error::Panicked { ref message } if message == "boom"));
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoverLayer {
    _private: (),
}

impl RecoverLayer {
    /// The layer.
    pub fn new() -> RecoverLayer {
        RecoverLayer::default()
    }
}

impl<S> Layer<S> for RecoverLayer {
    type Service = Recover<S>;

    fn layer(&self, inner: S) -> Recover<S> {
        Recover { inner }
    }
}
