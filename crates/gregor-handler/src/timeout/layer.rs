use std::time::Duration;

use tower::Layer;

use super::service::Timeout;

/// Limits each call of the inner service to a duration.
///
/// ```
/// use std::time::Duration;
/// let layer = gregor_handler::timeout::TimeoutLayer::new(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    after: Duration,
}

impl TimeoutLayer {
    /// Calls taking longer than `after` fail.
    pub fn new(after: Duration) -> TimeoutLayer {
        TimeoutLayer { after }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            after: self.after,
        }
    }
}
