use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::service::Retry;
use crate::error::Error;
use crate::message::Message;

/// Called before each retry with the message, the error and the delay about to be slept.
pub type OnRetry = Arc<dyn Fn(&Message, &Error, Duration) + Send + Sync>;

/// What the retry layer does when the next backoff would outlast the poll budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BudgetAction {
    /// Stop retrying: `RetriesExhausted` goes to the dead-letter layer. The default.
    #[default]
    DeadLetter,
    /// Return a deferred error: the worker pauses the partition for the backoff and delivers
    /// the record again, without holding the group.
    Pause,
}

/// Retries retriable errors with exponential backoff and jitter.
///
/// ```
/// use std::time::Duration;
/// use gregor_handler::retry::RetryLayer;
///
/// // The order consumer's policy: 3 attempts, 1 s then 2 s, ±20 %.
/// let retry = RetryLayer::new()
///     .max_attempts(3)
///     .backoff(Duration::from_secs(1), 2.0)
///     .max_elapsed(Duration::from_secs(60))
///     .on_retry(|msg, err, delay| eprintln!("retry {} of offset {} in {delay:?}: {err}", msg.attempt(), msg.offset()));
/// assert_eq!(retry.get_max_attempts(), 3);
/// ```
#[derive(Clone)]
pub struct RetryLayer {
    pub(super) config: Arc<Config>,
}

#[derive(Clone)]
pub(super) struct Config {
    pub(super) max_attempts: u32,
    pub(super) initial: Duration,
    pub(super) multiplier: f64,
    pub(super) max_delay: Duration,
    pub(super) jitter: f64,
    pub(super) max_elapsed: Option<Duration>,
    pub(super) poll_budget: Option<(Duration, BudgetAction)>,
    pub(super) on_retry: Option<OnRetry>,
}

impl std::fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        f.debug_struct("RetryLayer")
            .field("max_attempts", &c.max_attempts)
            .field("initial", &c.initial)
            .field("multiplier", &c.multiplier)
            .field("max_delay", &c.max_delay)
            .field("jitter", &c.jitter)
            .field("max_elapsed", &c.max_elapsed)
            .field("poll_budget", &c.poll_budget)
            .finish_non_exhaustive()
    }
}

impl Default for RetryLayer {
    fn default() -> RetryLayer {
        RetryLayer::new()
    }
}

impl RetryLayer {
    /// 3 attempts, backoff 1 s doubling up to 30 s, ±20 % jitter, no elapsed limit, no poll budget.
    pub fn new() -> RetryLayer {
        RetryLayer {
            config: Arc::new(Config {
                max_attempts: 3,
                initial: Duration::from_secs(1),
                multiplier: 2.0,
                max_delay: Duration::from_secs(30),
                jitter: 0.2,
                max_elapsed: None,
                poll_budget: None,
                on_retry: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> RetryLayer {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Attempts in all, the first included (default 3; 1 = never retry; 0 is taken as 1).
    pub fn max_attempts(self, n: u32) -> RetryLayer {
        self.edit(|c| c.max_attempts = n.max(1))
    }

    /// The configured attempts.
    pub fn get_max_attempts(&self) -> u32 {
        self.config.max_attempts
    }

    /// First delay and growth factor (default 1 s, ×2).
    pub fn backoff(self, initial: Duration, multiplier: f64) -> RetryLayer {
        self.edit(|c| {
            c.initial = initial;
            c.multiplier = if multiplier.is_finite() && multiplier >= 1.0 {
                multiplier
            } else {
                1.0
            };
        })
    }

    /// Largest single delay (default 30 s).
    pub fn max_delay(self, max: Duration) -> RetryLayer {
        self.edit(|c| c.max_delay = max)
    }

    /// Random spread as a fraction of each delay, 0 to 1 (default 0.2 = ±20 %).
    pub fn jitter(self, fraction: f64) -> RetryLayer {
        self.edit(|c| {
            c.jitter = if fraction.is_finite() {
                fraction.clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
    }

    /// Stop when the next delay would end later than this after the first attempt began
    /// (default: no limit).
    pub fn max_elapsed(self, max: Duration) -> RetryLayer {
        self.edit(|c| c.max_elapsed = Some(max))
    }

    /// The time one record may spend in retries before it would hold its consumer group:
    /// `max.poll.interval.ms` less a safety margin (the worker sets this from the consumer's
    /// configuration). Past it, `action` decides (default: no budget).
    pub fn poll_budget(self, budget: Duration, action: BudgetAction) -> RetryLayer {
        self.edit(|c| c.poll_budget = Some((budget, action)))
    }

    /// A hook called before each retry (metrics, logs).
    pub fn on_retry(
        self,
        f: impl Fn(&Message, &Error, Duration) + Send + Sync + 'static,
    ) -> RetryLayer {
        self.edit(|c| c.on_retry = Some(Arc::new(f)))
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            prototype: Arc::new(inner.clone()),
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
