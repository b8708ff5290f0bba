#![doc = include_str!("../README.md")]

pub mod avro;
pub mod cloudevents;
mod envelope;
mod error;
pub mod headers;
mod money;
mod order;
pub mod time;
mod typed;

pub use envelope::Event;
pub use error::{Error, Result};
pub use headers::{Header, Headers, TraceParent};
pub use money::{MAX_CENTS, Money, MoneyError};
pub use order::{Item, OrderEvent, OrderStatus};
pub use typed::TypedEvent;
