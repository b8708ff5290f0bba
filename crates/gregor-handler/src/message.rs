//! The consumed message a handler sees, and what handling it came to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use gregor_event::{Event, Headers, TypedEvent};

use crate::error::{Error, Result};

/// One consumed record with its decoded event: what every handler and layer receives.
///
/// Cloning is cheap (reference counts): the retry layer hands a clone to each attempt, and
/// every clone shares the attempt counter, so [`Message::attempt`] is the same number for
/// the handler and for the layers around the retry layer (the dead-letter `retry_count`).
///
/// ```
/// use gregor_handler::Message;
/// use gregor_event::Event;
///
/// let event = Event::new("order.created", "shop", serde_json::json!({"order_id": "o-1"}));
/// let msg = Message::new("commerce.orders.created", 2, 41)
///     .with_key("u-7")
///     .with_group("order-processor")
///     .with_event(event);
/// assert_eq!(msg.event_type(), Some("order.created"));
/// assert_eq!(msg.attempt(), 1);
/// ```
#[derive(Clone)]
pub struct Message {
    /// One reference count per clone: the layers that keep the message for a retry, a
    /// dead-letter publish or their metrics each clone it on every call.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Headers,
    group: Option<Arc<str>>,
    event: Decoded,
    attempts: AtomicU32,
}

impl Clone for Inner {
    /// A copy for a builder call on a shared message: it starts from the same attempt.
    fn clone(&self) -> Inner {
        Inner {
            topic: Arc::clone(&self.topic),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            group: self.group.clone(),
            event: self.event.clone(),
            attempts: AtomicU32::new(self.attempts.load(Ordering::Acquire)),
        }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.inner;
        f.debug_struct("Message")
            .field("topic", &m.topic)
            .field("partition", &m.partition)
            .field("offset", &m.offset)
            .field("timestamp_ms", &m.timestamp_ms)
            .field("key", &m.key)
            .field("value", &m.value)
            .field("headers", &m.headers)
            .field("group", &m.group)
            .field("event", &m.event)
            .field("attempts", &m.attempts)
            .finish()
    }
}

#[derive(Debug, Clone)]
enum Decoded {
    /// Nothing was decoded (a handler of raw records).
    None,
    Event(Arc<Event>),
    Failed(Arc<str>),
}

impl Message {
    /// A message at `topic`/`partition`/`offset` with no key, value, headers or event.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32, offset: i64) -> Message {
        Message {
            inner: Arc::new(Inner {
                topic: topic.into(),
                partition,
                offset,
                timestamp_ms: -1,
                key: None,
                value: None,
                headers: Headers::new(),
                group: None,
                event: Decoded::None,
                attempts: AtomicU32::new(1),
            }),
        }
    }

    /// The fields, to set one (copied first when another clone shares them).
    fn fields(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Sets the record timestamp (milliseconds since the Unix epoch; negative = none).
    pub fn with_timestamp_ms(mut self, ms: i64) -> Message {
        self.fields().timestamp_ms = ms;
        self
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Message {
        self.fields().key = Some(key.into());
        self
    }

    /// Sets the value (the encoded bytes as consumed).
    pub fn with_value(mut self, value: impl Into<Bytes>) -> Message {
        self.fields().value = Some(value.into());
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: Headers) -> Message {
        self.fields().headers = headers;
        self
    }

    /// Sets the consumer group that read the record.
    pub fn with_group(mut self, group: impl Into<Arc<str>>) -> Message {
        self.fields().group = Some(group.into());
        self
    }

    /// Sets the decoded event.
    pub fn with_event(mut self, event: impl Into<Arc<Event>>) -> Message {
        self.fields().event = Decoded::Event(event.into());
        self
    }

    /// Records that decoding failed: [`Message::event`] then returns a fatal
    /// [`Error::Deserialization`], which the dead-letter layer publishes.
    pub fn with_decode_error(mut self, message: impl Into<Arc<str>>) -> Message {
        self.fields().event = Decoded::Failed(message.into());
        self
    }

    /// Topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The topic as a shared string (cheap to keep).
    pub fn topic_arc(&self) -> &Arc<str> {
        &self.inner.topic
    }

    /// Partition.
    pub fn partition(&self) -> i32 {
        self.inner.partition
    }

    /// Offset.
    pub fn offset(&self) -> i64 {
        self.inner.offset
    }

    /// Record timestamp in milliseconds since the epoch (negative when the record had none).
    pub fn timestamp_ms(&self) -> i64 {
        self.inner.timestamp_ms
    }

    /// Record timestamp, when it has one.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        if self.inner.timestamp_ms < 0 {
            return None;
        }
        DateTime::from_timestamp_millis(self.inner.timestamp_ms)
    }

    /// Key as consumed.
    pub fn key(&self) -> Option<&Bytes> {
        self.inner.key.as_ref()
    }

    /// Value as consumed (encoded).
    pub fn value(&self) -> Option<&Bytes> {
        self.inner.value.as_ref()
    }

    /// Headers in wire order.
    pub fn headers(&self) -> &Headers {
        &self.inner.headers
    }

    /// The consumer group, when the record was read by one.
    pub fn group(&self) -> Option<&str> {
        self.inner.group.as_deref()
    }

    /// The decoded event, or the fatal error that says why there is none.
    pub fn event(&self) -> Result<&Event> {
        match &self.inner.event {
            Decoded::Event(e) => Ok(e),
            Decoded::Failed(why) => Err(self.decode_error(why)),
            Decoded::None => Err(self.decode_error("no decoder was configured for this topic")),
        }
    }

    /// The decoded event, when decoding succeeded.
    pub fn event_arc(&self) -> Option<&Arc<Event>> {
        match &self.inner.event {
            Decoded::Event(e) => Some(e),
            _ => None,
        }
    }

    /// Whether decoding failed.
    pub fn is_poison(&self) -> bool {
        matches!(self.inner.event, Decoded::Failed(_))
    }

    fn decode_error(&self, why: &str) -> Error {
        Error::Deserialization {
            topic: self.inner.topic.to_string(),
            partition: self.inner.partition,
            offset: self.inner.offset,
            message: why.to_owned(),
        }
    }

    /// The event type: the decoded event's, else the `event-type` header's.
    pub fn event_type(&self) -> Option<&str> {
        match &self.inner.event {
            Decoded::Event(e) => Some(&e.event_type),
            _ => self.inner.headers.event_type(),
        }
    }

    /// The event's data as a typed value; a mismatch is a fatal [`Error::Validation`].
    pub fn decode<T: TypedEvent>(&self) -> Result<T> {
        let event = self.event()?;
        T::from_event(event).map_err(|e| Error::validation(e.to_string()))
    }

    /// Which attempt this is, from 1; the retry layer counts them.
    pub fn attempt(&self) -> u32 {
        self.inner.attempts.load(Ordering::Acquire)
    }

    /// Retries so far (`attempt - 1`).
    pub fn retries(&self) -> u32 {
        self.attempt().saturating_sub(1)
    }

    /// Counts one more attempt (for retry layers); returns the new attempt number.
    pub fn next_attempt(&self) -> u32 {
        self.inner.attempts.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// A fresh delivery of the same record: attempts start again at 1 (the worker uses it when
    /// it delivers a record again after a deferral or a failed dead-letter publish).
    pub fn redeliver(&self) -> Message {
        let mut inner = Inner::clone(&self.inner);
        inner.attempts = AtomicU32::new(1);
        Message {
            inner: Arc::new(inner),
        }
    }
}

/// What handling a message came to. Every outcome means "done": the worker commits past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler succeeded.
    Processed,
    /// A filter let it by (not handled, committed).
    Filtered,
    /// The router had no handler and its fallback is skip (counted, committed).
    Skipped,
    /// Published to the dead-letter topic (committed).
    DeadLettered,
    /// Seen before inside the dedupe window (not handled again, committed).
    Duplicate,
}

impl Outcome {
    /// Every outcome, for metrics labels and summaries.
    pub const ALL: [Outcome; 5] = [
        Outcome::Processed,
        Outcome::Filtered,
        Outcome::Skipped,
        Outcome::DeadLettered,
        Outcome::Duplicate,
    ];

    /// `processed`, `filtered`, `skipped`, `dead_lettered` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Filtered => "filtered",
            Outcome::Skipped => "skipped",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Duplicate => "duplicate",
        }
    }
}

impl From<()> for Outcome {
    fn from((): ()) -> Outcome {
        Outcome::Processed
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn poison_messages_fail_fatally_with_their_position() {
        let m = Message::new("t", 3, 9).with_decode_error("expected value at line 1");
        let err = m.event().unwrap_err();
        assert_eq!(err.class(), ErrorClass::Fatal);
        assert!(err.to_string().contains("t/3 at offset 9"), "{err}");
        assert!(m.is_poison());
    }

    #[test]
    fn event_type_falls_back_to_the_header() {
        let mut h = Headers::new();
        h.set_event_type("order.updated");
        let m = Message::new("t", 0, 0).with_headers(h);
        assert_eq!(m.event_type(), Some("order.updated"));
    }

    #[test]
    fn clones_share_attempts_and_redelivery_resets_them() {
        let m = Message::new("t", 0, 0);
        let c = m.clone();
        assert_eq!(c.next_attempt(), 2);
        assert_eq!(m.attempt(), 2);
        assert_eq!(m.retries(), 1);
        assert_eq!(m.redeliver().attempt(), 1);
    }

    #[test]
    fn typed_read_mismatch_is_validation() {
        let e = Event::new("order.created", "s", serde_json::json!({"nope": 1}));
        let m = Message::new("t", 0, 0).with_event(e);
        let err = m.decode::<gregor_event::OrderEvent>().unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err}");
    }
}
