use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tower::Layer;

use super::service::CircuitBreaker;

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls fail until the probe is due.
    Open {
        /// Time until the breaker goes half-open.
        retry_after: Duration,
    },
    /// One probe call is allowed (or running); others wait.
    HalfOpen,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) threshold: u32,
    pub(super) open_for: Duration,
    pub(super) failures: u32,
    pub(super) opened_at: Option<Instant>,
    /// When the running probe started (a probe whose future was dropped expires after
    /// `open_for`).
    pub(super) probing: Option<Instant>,
}

/// A shared handle on a breaker: the state the worker looks at. Clones share it.
#[derive(Debug, Clone)]
pub struct Breaker {
    pub(super) inner: Arc<Mutex<Inner>>,
}

impl Inner {
    pub(super) fn probe_running(&self) -> bool {
        self.probing.is_some_and(|t| t.elapsed() < self.open_for)
    }
}

impl Breaker {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state now.
    pub fn state(&self) -> State {
        let g = self.lock();
        match g.opened_at {
            None => State::Closed,
            Some(at) => {
                let elapsed = at.elapsed();
                if elapsed >= g.open_for {
                    State::HalfOpen
                } else {
                    State::Open {
                        retry_after: g.open_for - elapsed,
                    }
                }
            }
        }
    }

    /// Whether calls would be refused right now (open, or half-open with a probe running).
    pub fn is_blocking(&self) -> bool {
        match self.state() {
            State::Closed => false,
            State::Open { .. } => true,
            State::HalfOpen => self.lock().probe_running(),
        }
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

/// Opens after `threshold` consecutive retriable failures, for `open_for`.
///
/// ```
/// use std::time::Duration;
/// use gregor_handler::circuit_breaker::{CircuitBreakerLayer, State};
///
/// let layer = CircuitBreakerLayer::new(5, Duration::from_secs(30));
/// let breaker = layer.breaker(); // give this to the worker
/// assert_eq!(breaker.state(), State::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: Breaker,
}

impl CircuitBreakerLayer {
    /// A closed breaker. Every service this layer builds shares it.
    pub fn new(threshold: u32, open_for: Duration) -> CircuitBreakerLayer {
        CircuitBreakerLayer {
            breaker: Breaker {
                inner: Arc::new(Mutex::new(Inner {
                    threshold: threshold.max(1),
                    open_for,
                    failures: 0,
                    opened_at: None,
                    probing: None,
                })),
            },
        }
    }

    /// The shared state.
    pub fn breaker(&self) -> Breaker {
        self.breaker.clone()
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> CircuitBreaker<S> {
        CircuitBreaker {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}
