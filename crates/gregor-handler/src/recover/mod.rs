//! Recover: a panic becomes the fatal [`Error::Panicked`](crate::Error::Panicked), never a
//! crashed worker.
//!
//! A panic unwinds through every layer between the handler and the nearest recover layer,
//! so where the layer sits decides who sees the error:
//!
//! ```text
//! recover ─▶ metrics ─▶ dead-letter ─▶ retry ─▶ timeout ─▶ router ─▶ recover ─▶ handler
//! (outermost: a panic in any layer,                                (innermost: a handler panic
//!  even the publisher, is an error)                                 is a fatal error that the
//!                                                                   dead-letter layer publishes)
//! ```
//!
//! The `gregor` crate's default stack has both.

mod future;
mod layer;
mod service;

pub use future::RecoverFuture;
pub use layer::RecoverLayer;
pub use service::Recover;

/// The panic payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}
