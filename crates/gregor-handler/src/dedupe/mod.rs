//! Dedupe: an idempotent consumer. An event whose `source` + `id` was handled successfully
//! within the window is not handled again ([`Outcome::Duplicate`](crate::Outcome::Duplicate)).
//!
//! ```text
//! call ─▶ no decoded event ─▶ inner
//!      ─▶ store.seen(source/id)? ─▶ yes ─▶ Ok(Duplicate)
//!                                 └▶ no ─▶ inner ─▶ Ok ─▶ store.remember(source/id) ─▶ Ok
//!                                                 └▶ Err ─▶ Err (not remembered: a redelivery runs again)
//! ```
//!
//! A key is remembered only after success, so a failed attempt is never mistaken for a
//! duplicate. Put it outside the retry layer.

mod layer;
mod service;
mod store;

pub use layer::DedupeLayer;
pub use service::Dedupe;
pub use store::{DedupeStore, MemoryStore};
