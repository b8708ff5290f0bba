use tower::Layer;

use super::service::Tracing;

/// Opens a consumer span per message, child of the producer's span (see the module docs).
///
/// ```
/// use gregor_handler::trace::TracingLayer;
/// let layer = TracingLayer::new();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLayer {
    _private: (),
}

impl TracingLayer {
    /// The layer.
    pub fn new() -> TracingLayer {
        TracingLayer::default()
    }
}

impl<S> Layer<S> for TracingLayer {
    type Service = Tracing<S>;

    fn layer(&self, inner: S) -> Tracing<S> {
        Tracing { inner }
    }
}
