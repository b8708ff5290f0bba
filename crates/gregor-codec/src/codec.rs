//! The codec traits: what turns a value into record bytes and back, seeing topic and headers.

use std::future::Future;
use std::pin::Pin;

use gregor_event::Headers;

use crate::error::{Location, Result};

/// A boxed future, so codecs can sit behind `dyn` in a [`crate::CodecRegistry`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a record goes to or comes from. Decode errors carry it, so they name the topic and,
/// when given, the partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition, if known (consumers know it).
    pub partition: Option<i32>,
    /// Offset, if known (consumers know it).
    pub offset: Option<i64>,
    /// True when the bytes are the record key (`<topic>-key` subjects), false for the value.
    pub key: bool,
}

impl<'a> Context<'a> {
    /// The value of a record on `topic`.
    pub fn new(topic: &'a str) -> Context<'a> {
        Context {
            topic,
            partition: None,
            offset: None,
            key: false,
        }
    }

    /// The same, at `partition` and `offset` (for consumers).
    pub fn at(mut self, partition: i32, offset: i64) -> Context<'a> {
        self.partition = Some(partition);
        self.offset = Some(offset);
        self
    }

    /// The record key instead of the value.
    pub fn for_key(mut self) -> Context<'a> {
        self.key = true;
        self
    }

    /// An owned [`Location`] for errors.
    pub fn location(&self) -> Location {
        Location {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            key: self.key,
        }
    }
}

/// Turns a `T` into record bytes for a topic. It may add headers (a content type, an event
/// type). Implementations never panic on any value.
///
/// ```
/// use gregor_codec::{BoxFuture, Context, Result, Serializer};
/// use gregor_event::Headers;
///
/// /// Writes numbers as decimal text and says so in a header.
/// struct Decimal;
///
/// impl Serializer<u64> for Decimal {
///     fn serialize<'a>(&'a self, _ctx: &'a Context<'a>, headers: &'a mut Headers, value: &'a u64)
///         -> BoxFuture<'a, Result<Vec<u8>>> {
///         headers.insert("content-type", "text/plain");
///         let bytes = value.to_string().into_bytes();
///         Box::pin(async move { Ok(bytes) })
///     }
/// }
///
/// # tokio_test(async {
/// let mut headers = Headers::new();
/// let bytes = Decimal.serialize(&Context::new("numbers"), &mut headers, &42).await?;
/// assert_eq!(bytes, b"42");
/// assert_eq!(headers.get_str("content-type"), Some("text/plain"));
/// # Ok::<(), gregor_codec::Error>(())
/// # });
/// # fn tokio_test<F: std::future::Future<Output = Result<()>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
/// # }
/// ```
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// Encodes `value` for `ctx.topic`, possibly adding `headers`.
    fn serialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        headers: &'a mut Headers,
        value: &'a T,
    ) -> BoxFuture<'a, Result<Vec<u8>>>;
}

/// Turns record bytes from a topic back into a `T`. Any bytes at all give a value or a typed
/// error, never a panic and never an allocation larger than the configured limits.
///
/// ```
/// use gregor_codec::{BoxFuture, Context, Deserializer, Error, Result};
/// use gregor_event::Headers;
///
/// struct Decimal;
///
/// impl Deserializer<u64> for Decimal {
///     fn deserialize<'a>(&'a self, ctx: &'a Context<'a>, _headers: &'a Headers, payload: &'a [u8])
///         -> BoxFuture<'a, Result<u64>> {
///         let parsed = std::str::from_utf8(payload)
///             .map_err(|source| Error::Utf8 { at: ctx.location(), source })
///             .and_then(|s| s.parse().map_err(|e: std::num::ParseIntError| Error::Serialize {
///                 at: ctx.location(), detail: e.to_string() }));
///         Box::pin(async move { parsed })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = Context::new("numbers").at(3, 42);
/// assert_eq!(Decimal.deserialize(&ctx, &Headers::new(), b"7").await.unwrap(), 7);
/// let err = Decimal.deserialize(&ctx, &Headers::new(), &[0xff]).await.unwrap_err();
/// assert!(err.to_string().contains("partition 3 offset 42"));
/// # });
/// ```
pub trait Deserializer<T>: Send + Sync {
    /// Decodes `payload` read from `ctx.topic`, with the record's `headers`.
    fn deserialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<T>>;
}

/// A serializer and deserializer for one payload type, with a name for logs and an optional
/// warm-up (registering or looking up schemas before the first record).
pub trait Codec<T>: Serializer<T> + Deserializer<T> {
    /// Short name: `json`, `avro`, `string`, `bytes`, ...
    fn name(&self) -> &str;

    /// Does everything the first record on `topics` would otherwise do (schema registration,
    /// lookups), so that a refused schema is an error at startup, not on a record. The default
    /// does nothing.
    fn prepare<'a>(&'a self, topics: &'a [&'a str]) -> BoxFuture<'a, Result<()>> {
        let _ = topics;
        Box::pin(async { Ok(()) })
    }
}
