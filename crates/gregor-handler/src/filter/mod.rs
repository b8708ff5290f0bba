//! Filter: let through only the messages a handler wants; the rest answer
//! [`Outcome::Filtered`](crate::Outcome::Filtered) and are committed like handled ones.
//!
//! ```text
//! call ─▶ undecodable? ─▶ inner (the router fails it and the dead-letter layer takes it)
//!      ─▶ type allowed, time in range, every predicate true? ─▶ inner
//!      ─▶ otherwise ─▶ Ok(Filtered)
//! ```

mod layer;
mod service;

pub use layer::FilterLayer;
pub use service::Filter;
