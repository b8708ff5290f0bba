//! Why a value could not be encoded or decoded, or a codec not set up.

use std::fmt;

use crate::registry::RegistryError;

/// Where a record came from or goes to: the topic, and the partition and offset when the caller
/// knows them. Every decode error carries one, so a log line says which record was bad.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Topic.
    pub topic: String,
    /// Partition, if known.
    pub partition: Option<i32>,
    /// Offset, if known.
    pub offset: Option<i64>,
    /// True for the record key, false for the value.
    pub key: bool,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic {}", self.topic)?;
        if let Some(p) = self.partition {
            write!(f, " partition {p}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        if self.key {
            f.write_str(" (key)")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in gregor-codec. Bytes from the network never cause a panic or
/// an unbounded allocation: they end up here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer than the 5 bytes of the Confluent header (magic byte + schema id).
    #[error("{at}: payload of {len} bytes is shorter than the 5-byte Confluent header")]
    ShortPayload {
        /// The record.
        at: Location,
        /// Its length.
        len: usize,
    },

    /// The first byte is not the Confluent magic byte 0.
    #[error("{at}: magic byte {magic:#04x} is not 0x00: not Confluent-framed data")]
    BadMagic {
        /// The record.
        at: Location,
        /// The byte found.
        magic: u8,
    },

    /// The schema id is negative as a Java `int` (Confluent ids are positive).
    #[error("{at}: schema id {id} is negative")]
    NegativeSchemaId {
        /// The record.
        at: Location,
        /// The id as a signed 32-bit integer.
        id: i32,
    },

    /// The registry does not know the schema id.
    #[error("{at}: schema id {id} is unknown to the schema registry")]
    UnknownSchemaId {
        /// The record.
        at: Location,
        /// The id.
        id: u32,
    },

    /// An Avro datum that does not decode with its writer schema: truncated, corrupted, a
    /// length beyond the allocation limit, or a value the target type cannot hold.
    #[error("{at}: Avro datum of schema id {schema_id} does not decode: {detail}")]
    Avro {
        /// The record.
        at: Location,
        /// The writer schema id from the header.
        schema_id: u32,
        /// apache-avro's or serde's message.
        detail: String,
    },

    /// Bytes left over after a complete datum: the payload is corrupted or not what the id says.
    #[error("{at}: {extra} bytes left after the Avro datum of schema id {schema_id}")]
    TrailingBytes {
        /// The record.
        at: Location,
        /// The writer schema id.
        schema_id: u32,
        /// How many bytes were left.
        extra: usize,
    },

    /// The writer schema cannot be read as the reader schema (schema resolution failed).
    #[error("{at}: data of schema id {schema_id} cannot be read as {reader}: {detail}")]
    Resolution {
        /// The record.
        at: Location,
        /// The writer schema id.
        schema_id: u32,
        /// The reader record's full name.
        reader: String,
        /// Why.
        detail: String,
    },

    /// JSON that is not valid or does not match the target type.
    #[error("{at}: JSON does not match {target}: {source}")]
    Json {
        /// The record.
        at: Location,
        /// The Rust type expected.
        target: &'static str,
        /// serde_json's error (line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A string payload that is not UTF-8.
    #[error("{at}: payload is not UTF-8: {source}")]
    Utf8 {
        /// The record.
        at: Location,
        /// Where it stops being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },

    /// The event model refused the payload (e.g. an event type no decoder knows).
    #[error("{at}: {source}")]
    Event {
        /// The record.
        at: Location,
        /// gregor-event's error.
        #[source]
        source: gregor_event::Error,
    },

    /// A value could not be written (e.g. it does not fit the writer schema).
    #[error("{at}: cannot serialize: {detail}")]
    Serialize {
        /// The record.
        at: Location,
        /// Why.
        detail: String,
    },

    /// The registry refused to register a schema as incompatible with the subject's history.
    #[error(
        "subject {subject}: the schema registry refused the schema as incompatible with the registered versions: {message}"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },

    /// The subject has no (matching) schema and this codec may not register one.
    #[error(
        "subject {subject}: {what}; register it first, or enable auto_register (or use_latest_version)"
    )]
    NotRegistered {
        /// The subject.
        subject: String,
        /// What was missing.
        what: String,
    },

    /// A schema that apache-avro cannot parse.
    #[error("schema {what}: {detail}")]
    Schema {
        /// Which schema (a subject, an id, a file).
        what: String,
        /// The parser's message.
        detail: String,
    },

    /// A request to the schema registry failed after its retries.
    #[error(transparent)]
    Registry(#[from] RegistryError),

    /// A configuration value that cannot work.
    #[error("configuration {key}: {reason}")]
    Config {
        /// The key (e.g. `topics[2].codec`).
        key: String,
        /// What to change.
        reason: String,
    },

    /// No codec serves this topic.
    #[error(
        "no codec is configured for topic {topic} (no exact name, prefix, pattern or default matches)"
    )]
    NoCodec {
        /// The topic.
        topic: String,
    },
}

impl Error {
    /// Whether trying again later can succeed: only registry outages (unreachable, timeout,
    /// 5xx). Malformed data and refused schemas are never retriable.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::Registry(e) if e.is_retriable())
    }
}

/// Result with gregor-codec's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
