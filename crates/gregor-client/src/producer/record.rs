//! What goes in (`ProducerRecord`) and what comes back (`RecordMetadata`, `Delivery`,
//! `DeliveryFuture`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::consumer::Header;
use crate::error::{Error, Result};

/// A record to send.
///
/// ```
/// use gregor_client::ProducerRecord;
///
/// let record = ProducerRecord::new("orders", "{\"order_id\":\"o-1\"}")
///     .key("user-7")
///     .header("event-type", "order.created")
///     .header("version", "1");
/// assert_eq!(record.key.as_deref(), Some(&b"user-7"[..]));
/// assert_eq!(record.partition, None); // the partitioner decides
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerRecord {
    /// Topic. An `Arc<str>` so a stream of records to one topic shares one allocation.
    pub topic: Arc<str>,
    /// Partition; `None` lets the producer's partitioner choose.
    pub partition: Option<i32>,
    /// Key; `None` is a null key (keyless placement), `Some(empty)` is an empty key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in order. rskafka sends them as a map: see the producer's docs for what that
    /// loses (duplicate keys, order, null values).
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch; `None`: the time of sending.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record with a null value (a tombstone): deletes `key` from a compacted topic.
    pub fn tombstone(topic: impl Into<Arc<str>>, key: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: Some(key.into()),
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    /// Sends to `partition` instead of asking the partitioner.
    pub fn partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        self.headers.push(Header::new(key, Some(value.into())));
        self
    }

    /// Sets the timestamp (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, millis: i64) -> ProducerRecord {
        self.timestamp = Some(millis);
        self
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RecordMetadata {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's timestamp as sent (CreateTime), milliseconds since the Unix epoch. On a
    /// topic with `message.timestamp.type=LogAppendTime` the broker stores its own time
    /// instead, which rskafka does not return.
    pub timestamp: i64,
}

/// The outcome of a record sent with [`Producer::produce`](crate::Producer::produce),
/// passed to the delivery callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    /// The record (with the partition it went to, if one was chosen), so a failed one can be
    /// logged, parked or sent again.
    pub record: ProducerRecord,
    /// Where it was written, or why not.
    pub result: Result<RecordMetadata>,
}

/// Resolves when a record enqueued with [`Producer::enqueue`](crate::Producer::enqueue) is
/// acknowledged or has failed for good.
#[derive(Debug)]
#[must_use = "the delivery result tells whether the record was written"]
pub struct DeliveryFuture {
    pub(crate) rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}
