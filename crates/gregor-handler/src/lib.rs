#![doc = include_str!("../README.md")]

mod error;
mod handler;
mod message;
mod router;
mod stack;

pub mod circuit_breaker;
pub mod dead_letter;
pub mod dedupe;
pub mod filter;
pub mod metrics;
pub mod recover;
pub mod retry;
pub mod timeout;
pub mod trace;

pub use error::{BoxError, Error, ErrorClass, GaveUp, Result, chain};
pub use handler::{BoxHandler, HandlerFn, boxed, handler_fn};
pub use message::{Message, Outcome};
pub use router::{Fallback, Router, RouterFuture, SkipCounter};
pub use stack::Stack;

#[cfg(test)]
mod tests;
