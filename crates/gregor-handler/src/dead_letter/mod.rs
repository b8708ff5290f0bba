//! Dead-letter: after the last attempt, or at once on a fatal error, publish the record to a
//! dead-letter topic and count it as done.
//!
//! ```text
//! call ─▶ inner ─▶ Ok ──────────────────────────────────────────▶ Ok(outcome)
//!                 └▶ Err: deferred ─────────────────────────────▶ Err (the worker pauses)
//!                 └▶ Err: retriable or fatal ─▶ publish(<topic>.dlq, key, value,
//!                        original headers + error headers) ─▶ Ok ─▶ Ok(DeadLettered)
//!                                                           └▶ Err ─▶ Err(DeadLetter): not committed
//! ```
//!
//! The record keeps its key, value and headers; these headers are set, replacing any with the
//! same key (a record dead-lettered twice carries the latest failure, not two):
//! `error`, `error_class`, `retry_count`, `original_topic`, `original_partition`,
//! `original_offset`, `original_timestamp` (milliseconds since the epoch, as Kafka stores
//! it), `consumer_group` (empty when the record was read without a group).

mod layer;
mod service;

pub use layer::{DeadLetterLayer, TopicName};
pub use service::{DeadLetter, DeadLetterFuture};

use bytes::Bytes;
use futures::future::BoxFuture;
use gregor_event::Headers;

use crate::error::BoxError;

/// Header: the error message (the whole chain on one line).
pub const ERROR: &str = "error";
/// Header: `retriable` or `fatal`.
pub const ERROR_CLASS: &str = "error_class";
/// Header: retries made before giving up (`0` for a fatal error on the first attempt).
pub const RETRY_COUNT: &str = "retry_count";
/// Header: the topic the record was consumed from.
pub const ORIGINAL_TOPIC: &str = "original_topic";
/// Header: its partition.
pub const ORIGINAL_PARTITION: &str = "original_partition";
/// Header: its offset.
pub const ORIGINAL_OFFSET: &str = "original_offset";
/// Header: its timestamp, milliseconds since the epoch.
pub const ORIGINAL_TIMESTAMP: &str = "original_timestamp";
/// Header: the consumer group that gave up on it.
pub const CONSUMER_GROUP: &str = "consumer_group";

/// Every header the dead-letter layer sets, in the order it sets them.
pub const HEADERS: [&str; 8] = [
    ERROR,
    ERROR_CLASS,
    RETRY_COUNT,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_TIMESTAMP,
    CONSUMER_GROUP,
];

/// A record for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterRecord {
    /// The dead-letter topic.
    pub topic: String,
    /// The original key.
    pub key: Option<Bytes>,
    /// The original value, bytes unchanged.
    pub value: Option<Bytes>,
    /// The original headers plus the dead-letter headers.
    pub headers: Headers,
}

/// Publishes dead-letter records. gregor-client's producer implements it in the `gregor`
/// crate; this crate needs no Kafka client, so the layer is tested without a broker.
///
/// Return only once the record is acknowledged: the worker commits the original offset as
/// soon as this succeeds.
///
/// ```
/// use std::sync::Mutex;
/// use futures::future::BoxFuture;
/// use gregor_handler::BoxError;
/// use gregor_handler::dead_letter::{DeadLetterRecord, Publisher};
///
/// #[derive(Default)]
/// struct Memory(Mutex<Vec<DeadLetterRecord>>);
///
/// impl Publisher for Memory {
///     fn publish(&self, record: DeadLetterRecord) -> BoxFuture<'_, Result<(), BoxError>> {
///         Box::pin(async move {
///             self.0.lock().map_err(|_| "poisoned lock")?.push(record);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one record and waits for its acknowledgement.
    fn publish(&self, record: DeadLetterRecord) -> BoxFuture<'_, Result<(), BoxError>>;
}
