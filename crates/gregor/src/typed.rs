//! Typed send: a [`TypedEvent`] through a gregor-codec [`Serializer`] into a producer record
//! with the event's key and the standard `event-type` / `version` / `timestamp` headers.
//!
//! It lives in the facade because it joins two sibling layers: the client knows records, the
//! codecs know events; neither depends on the other.

use std::sync::Arc;

use bytes::Bytes;
use gregor_client::{Header, Producer, ProducerRecord, RecordMetadata};
use gregor_codec::{Context as CodecContext, Serializer};
use gregor_event::TypedEvent;

use crate::Result;

/// A record for `event` on `topic`: key = [`TypedEvent::key`] (so one key's events stay in
/// order on one partition), headers `event-type`, `version` ([`TypedEvent::VERSION`]) and
/// `timestamp` (RFC 3339; the record's timestamp is the header's final value), value = what
/// `serializer` writes; the serializer may add or replace headers (a content type, the
/// envelope's own time). A serializer failure is [`crate::Error::Codec`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use gregor::codec::JsonCodec;
/// use gregor::event::{Money, OrderEvent, OrderStatus};
///
/// let order = OrderEvent {
///     order_id: "o-1".into(),
///     user_id: "u-7".into(),
///     status: OrderStatus::Created,
///     amount: Money::parse("12.99")?,
///     items: vec![],
///     created_at: gregor::event::time::now(),
/// };
/// let record = gregor::record_from_event("orders", &order, &JsonCodec::new()).await?;
/// assert_eq!(record.key.as_deref(), Some(&b"u-7"[..]));
/// let header = |k: &str| record.headers.iter().find(|h| h.key == k).and_then(|h| h.value.clone());
/// assert_eq!(header("event-type").as_deref(), Some(&b"order.created"[..]));
/// assert_eq!(header("version").as_deref(), Some(&b"1"[..]));
/// assert!(header("timestamp").is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn record_from_event<E, S>(
    topic: impl Into<Arc<str>>,
    event: &E,
    serializer: &S,
) -> Result<ProducerRecord>
where
    E: TypedEvent + Sync,
    S: Serializer<E> + ?Sized,
{
    let topic: Arc<str> = topic.into();
    let now = gregor_event::time::now();
    let mut headers = gregor_event::Headers::new();
    headers.set_event_type(event.event_type());
    headers.set_version(E::VERSION);
    headers.set_timestamp(&now);
    let value = serializer
        .serialize(&CodecContext::new(&topic), &mut headers, event)
        .await?;
    // A codec that wraps the event (the envelope) stamps its own time: the record keeps
    // whatever the `timestamp` header says in the end.
    let time = headers.timestamp().ok().flatten().unwrap_or(now);
    let mut record = ProducerRecord::new(topic, value)
        .key(Bytes::copy_from_slice(event.key().as_bytes()))
        .timestamp(time.timestamp_millis());
    record.headers = headers
        .into_iter()
        .map(|h| Header::new(h.key, h.value))
        .collect();
    Ok(record)
}

/// `send_event` for gregor-client's [`Producer`].
pub trait SendEvent {
    /// Serializes `event` ([`record_from_event`]: key, standard headers) and sends it, waiting
    /// for the acknowledgement. A serializer failure sends nothing.
    fn send_event<E, S>(
        &self,
        topic: &str,
        event: &E,
        serializer: &S,
    ) -> impl std::future::Future<Output = Result<RecordMetadata>> + Send
    where
        E: TypedEvent + Sync,
        S: Serializer<E> + Sync + ?Sized;
}

impl SendEvent for Producer {
    async fn send_event<E, S>(
        &self,
        topic: &str,
        event: &E,
        serializer: &S,
    ) -> Result<RecordMetadata>
    where
        E: TypedEvent + Sync,
        S: Serializer<E> + Sync + ?Sized,
    {
        let record = record_from_event(topic, event, serializer).await?;
        Ok(self.send(record).await?)
    }
}
