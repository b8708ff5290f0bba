//! Circuit breaker: after N consecutive failures stop calling the handler for a while, then
//! let one probe through.
//!
//! ```text
//! Closed ──N consecutive retriable failures──▶ Open ──open_for elapsed──▶ HalfOpen
//!   ▲                                          ▲                           │ one probe
//!   └────────────── probe succeeds ────────────┼───────────────────────────┤
//!                                              └────── probe fails ────────┘
//! ```
//!
//! While open, calls fail with the deferred [`Error::CircuitOpen`](crate::Error::CircuitOpen):
//! not retried, not dead-lettered. The worker reads [`Breaker::state`] and pauses consumption
//! until the probe is due, then delivers the same records again. Only retriable errors count
//! as failures: a poison record says nothing about the downstream the breaker protects.

mod future;
mod layer;
mod service;

pub use future::BreakerFuture;
pub use layer::{Breaker, CircuitBreakerLayer, State};
pub use service::CircuitBreaker;
