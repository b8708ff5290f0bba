//! JSON codecs: any serde type as JSON, and typed events inside the [`Event`] envelope.

use std::marker::PhantomData;

use gregor_event::{Event, Headers, TypedEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{BoxFuture, Codec, Context, Deserializer, Serializer};
use crate::error::{Error, Result};

/// Content type header value of JSON payloads.
pub const CONTENT_TYPE: &str = "application/json";

/// Any `T: Serialize + DeserializeOwned` as JSON (serde_json).
///
/// ```
/// use gregor_codec::{Context, Deserializer, JsonCodec, Serializer};
/// use gregor_event::Headers;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let codec = JsonCodec::new().content_type_header(true);
/// let ctx = Context::new("orders");
/// let mut headers = Headers::new();
/// let bytes = Serializer::<Vec<u32>>::serialize(&codec, &ctx, &mut headers, &vec![1, 2]).await?;
/// assert_eq!(bytes, b"[1,2]");
/// assert_eq!(headers.get_str("content-type"), Some("application/json"));
/// let back: Vec<u32> = codec.deserialize(&ctx, &headers, &bytes).await?;
/// assert_eq!(back, [1, 2]);
/// # Ok::<(), gregor_codec::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec {
    content_type_header: bool,
}

impl JsonCodec {
    /// A JSON codec that adds no headers.
    pub fn new() -> JsonCodec {
        JsonCodec::default()
    }

    /// Whether to set `content-type: application/json` on every record (default false).
    pub fn content_type_header(mut self, on: bool) -> JsonCodec {
        self.content_type_header = on;
        self
    }

    /// Encodes synchronously (JSON needs no I/O).
    pub fn encode<T: Serialize + ?Sized>(&self, ctx: &Context<'_>, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::Serialize {
            at: ctx.location(),
            detail: e.to_string(),
        })
    }

    /// Decodes synchronously; JSON that does not match `T` is [`Error::Json`].
    pub fn decode<T: DeserializeOwned>(&self, ctx: &Context<'_>, payload: &[u8]) -> Result<T> {
        serde_json::from_slice(payload).map_err(|source| Error::Json {
            at: ctx.location(),
            target: std::any::type_name::<T>(),
            source,
        })
    }
}

impl<T: Serialize + Sync + ?Sized> Serializer<T> for JsonCodec {
    fn serialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        headers: &'a mut Headers,
        value: &'a T,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        if self.content_type_header {
            headers.insert("content-type", CONTENT_TYPE);
        }
        let out = self.encode(ctx, value);
        Box::pin(async move { out })
    }
}

impl<T: DeserializeOwned + Send + 'static> Deserializer<T> for JsonCodec {
    fn deserialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        _headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<T>> {
        let out = self.decode(ctx, payload);
        Box::pin(async move { out })
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Codec<T> for JsonCodec {
    fn name(&self) -> &str {
        "json"
    }
}

/// A typed event inside the JSON [`Event`] envelope, with the standard headers (`event-type`,
/// `version`, `timestamp`). Reading an envelope whose type `T` does not carry is
/// [`Error::Event`] with [`gregor_event::Error::UnknownEventType`].
#[derive(Debug, Clone)]
pub struct EnvelopeCodec<T> {
    source: String,
    _type: PhantomData<fn() -> T>,
}

impl<T: TypedEvent> EnvelopeCodec<T> {
    /// Envelopes with `source` (the producing service).
    pub fn new(source: impl Into<String>) -> EnvelopeCodec<T> {
        EnvelopeCodec {
            source: source.into(),
            _type: PhantomData,
        }
    }
}

impl<T: TypedEvent + Sync> Serializer<T> for EnvelopeCodec<T> {
    fn serialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        headers: &'a mut Headers,
        value: &'a T,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        let out = value
            .to_event(&self.source)
            .map_err(|source| Error::Event {
                at: ctx.location(),
                source,
            })
            .and_then(|event| {
                headers.set_event_type(&event.event_type);
                headers.set_version(T::VERSION);
                headers.set_timestamp(&event.timestamp);
                JsonCodec::new().encode(ctx, &event)
            });
        Box::pin(async move { out })
    }
}

impl<T: TypedEvent + Send + Sync + 'static> Deserializer<T> for EnvelopeCodec<T> {
    fn deserialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        _headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<T>> {
        let out = JsonCodec::new()
            .decode::<Event>(ctx, payload)
            .and_then(|event| {
                T::from_event(&event).map_err(|source| Error::Event {
                    at: ctx.location(),
                    source,
                })
            });
        Box::pin(async move { out })
    }
}

impl<T: TypedEvent + Send + Sync + 'static> Codec<T> for EnvelopeCodec<T> {
    fn name(&self) -> &str {
        "envelope-json"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{block_on, order};
    use gregor_event::OrderEvent;
    use proptest::prelude::*;

    #[test]
    fn order_round_trip_and_mismatches() {
        let codec = JsonCodec::new();
        let ctx = Context::new("orders").at(2, 17);
        let mut h = Headers::new();
        let bytes = block_on(codec.serialize(&ctx, &mut h, &order(3))).unwrap();
        assert!(h.is_empty());
        let back: OrderEvent = block_on(codec.deserialize(&ctx, &h, &bytes)).unwrap();
        assert_eq!(back, order(3));
        let err = block_on(Deserializer::<OrderEvent>::deserialize(
            &codec,
            &ctx,
            &h,
            br#"{"order_id":1}"#,
        ))
        .unwrap_err();
        assert!(matches!(err, Error::Json { .. }));
        assert!(
            err.to_string()
                .contains("topic orders partition 2 offset 17"),
            "{err}"
        );
    }

    #[test]
    fn envelope_names_unknown_event_types() {
        let codec = EnvelopeCodec::<OrderEvent>::new("test");
        let ctx = Context::new("orders");
        let mut h = Headers::new();
        let bytes = block_on(codec.serialize(&ctx, &mut h, &order(1))).unwrap();
        assert_eq!(h.event_type(), Some("order.created"));
        assert_eq!(h.version().unwrap(), Some(1));
        assert!(h.timestamp().unwrap().is_some());
        assert_eq!(
            block_on(codec.deserialize(&ctx, &h, &bytes)).unwrap(),
            order(1)
        );
        let other = Event::new("invoice.sent", "billing", serde_json::json!({}))
            .to_json()
            .unwrap();
        let err = block_on(codec.deserialize(&ctx, &h, other.as_bytes())).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Event {
                    source: gregor_event::Error::UnknownEventType { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_json_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let ctx = Context::new("t");
            let _ = JsonCodec::new().decode::<OrderEvent>(&ctx, &bytes);
            let _ = JsonCodec::new().decode::<Event>(&ctx, &bytes);
            let _ = block_on(EnvelopeCodec::<OrderEvent>::new("s").deserialize(&ctx, &Headers::new(), &bytes));
        }

        #[test]
        fn mutated_orders_never_panic_the_json_decoder(pos in 0usize..400, byte in any::<u8>()) {
            let mut bytes = serde_json::to_vec(&order(3)).unwrap();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = JsonCodec::new().decode::<OrderEvent>(&Context::new("t"), &bytes);
        }
    }
}
