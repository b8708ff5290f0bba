//! Retry: exponential backoff with jitter, for retriable errors only, bounded by attempts,
//! elapsed time and the poll budget.
//!
//! ```text
//! call ─▶ inner ─▶ Ok ─────────────────────────────────────────────▶ Ok
//!                 └▶ Err: fatal or deferred ─────────────────────────▶ Err (unchanged)
//!                 └▶ Err: retriable ─▶ attempts left? next backoff within max_elapsed
//!                                      and the poll budget? ─▶ on_retry, sleep, call again
//!                                      else ─▶ RetriesExhausted (dead-letter) or Deferred (pause)
//! ```
//!
//! Put it inside the dead-letter layer: the dead-letter layer then sees only the final error,
//! with the number of retries in the message's shared attempt counter.

mod layer;
mod service;

pub use layer::{BudgetAction, OnRetry, RetryLayer};
pub use service::{Retry, RetryFuture};

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// A number in `[0, 1)` that differs per call (no crate needed for jitter).
pub(crate) fn random_unit() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = RandomState::new().hash_one(n) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The delay before retry number `retry` (1 = the first retry): `initial * multiplier^(retry-1)`,
/// capped at `max`, then moved by up to `±jitter` of itself.
pub(crate) fn backoff(
    initial: Duration,
    multiplier: f64,
    max: Duration,
    jitter: f64,
    retry: u32,
    unit: f64,
) -> Duration {
    let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = (initial.as_secs_f64() * multiplier.powi(exp)).min(max.as_secs_f64());
    let spread = base * jitter.clamp(0.0, 1.0) * (2.0 * unit - 1.0);
    Duration::from_secs_f64((base + spread).clamp(0.0, max.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_caps_and_jitters_within_bounds() {
        let s = Duration::from_secs;
        let no_jitter = |r| backoff(s(1), 2.0, s(30), 0.0, r, 0.5);
        assert_eq!(no_jitter(1), s(1));
        assert_eq!(no_jitter(2), s(2));
        assert_eq!(no_jitter(3), s(4));
        assert_eq!(no_jitter(10), s(30));
        let low = backoff(s(4), 2.0, s(30), 0.25, 1, 0.0);
        let high = backoff(s(4), 2.0, s(30), 0.25, 1, 0.999_999);
        assert_eq!(low, s(3));
        assert!(high > Duration::from_millis(4990) && high <= s(5));
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
