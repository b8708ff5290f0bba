//! Timeout: a handler that does not finish in time fails with the retriable
//! [`Error::Timeout`](crate::Error::Timeout) (tower's own `TimeoutLayer` also composes; its
//! error converts to a retriable handler error).
//!
//! Put it inside the retry layer so each attempt gets the full time.

mod future;
mod layer;
mod service;

pub use future::TimeoutFuture;
pub use layer::TimeoutLayer;
pub use service::Timeout;
