use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::Service;

use super::future::BreakerFuture;
use super::layer::Breaker;
use crate::error::Error;
use crate::message::{Message, Outcome};

/// The service [`super::CircuitBreakerLayer`] builds.
#[derive(Debug, Clone)]
pub struct CircuitBreaker<S> {
    pub(super) inner: S,
    pub(super) breaker: Breaker,
}

impl<S> Service<Message> for CircuitBreaker<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = BreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let probe = {
            let mut g = self.breaker.lock();
            match g.opened_at {
                None => false,
                Some(at) => {
                    let elapsed = at.elapsed();
                    if elapsed < g.open_for {
                        return BreakerFuture::refused(g.open_for - elapsed);
                    }
                    if g.probe_running() {
                        // A probe is out: the others wait a little and come back.
                        return BreakerFuture::refused(g.open_for / 10);
                    }
                    g.probing = Some(Instant::now());
                    true
                }
            }
        };
        BreakerFuture::running(self.inner.call(msg), self.breaker.clone(), probe)
    }
}

impl Breaker {
    /// Records the result of a call.
    pub(super) fn record(&self, failed: bool, probe: bool) {
        let mut g = self.lock();
        if probe {
            g.probing = None;
        }
        if failed {
            g.failures = g.failures.saturating_add(1);
            if probe || g.failures >= g.threshold {
                if g.opened_at.is_none() || probe {
                    tracing::warn!(failures = g.failures, open_for = ?g.open_for, "circuit breaker open");
                }
                g.opened_at = Some(Instant::now());
            }
        } else {
            if g.opened_at.is_some() {
                tracing::info!("circuit breaker closed");
            }
            g.failures = 0;
            g.opened_at = None;
        }
    }
}
