//! The envelope every gregor event travels in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::headers::Headers;

/// An event: what happened (`type`), when, where it came from, its data and free-form metadata.
///
/// JSON field names are those of the classic Go kafka-service layout:
///
/// ```json
/// {"id":"7d0f…","type":"order.created","timestamp":"2026-01-02T03:04:05.000006Z",
///  "source":"order-service","data":{…},"metadata":{"region":"eu"}}
/// ```
///
/// In Avro (`schemas/event.avsc`) `id` is a `uuid` string, `timestamp` a `timestamp-micros`
/// long, `data` the JSON text of the data, and `metadata` a map of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (UUID v4 for new events).
    #[serde(with = "crate::time::uuid_text")]
    pub id: Uuid,
    /// Event type, dot-separated: `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened, UTC, microsecond precision.
    #[serde(with = "crate::time")]
    pub timestamp: DateTime<Utc>,
    /// Who produced it (service name or URI).
    pub source: String,
    /// The event's payload, as JSON.
    #[serde(with = "data_json")]
    pub data: serde_json::Value,
    /// Free-form string metadata (a JSON `null` reads as empty).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Event {
    /// A new event with a fresh id and the current time.
    pub fn new(
        event_type: impl Into<String>,
        source: impl Into<String>,
        data: serde_json::Value,
    ) -> Event {
        Event {
            id: Uuid::new_v4(),
            event_type: event_type.into(),
            timestamp: crate::time::now(),
            source: source.into(),
            data,
            metadata: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the timestamp (cut to microseconds, the precision every format keeps).
    pub fn with_timestamp(mut self, timestamp: DateTime<Utc>) -> Event {
        self.timestamp = crate::time::truncate_micros(timestamp);
        self
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|source| Error::Json {
            what: format!("writing event {}", self.id),
            source,
        })
    }

    /// Reads an envelope from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Event> {
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: "reading an event envelope".into(),
            source,
        })
    }

    /// The standard headers for this event: `event-type`, `timestamp` (and `version` if given).
    pub fn headers(&self, version: Option<u32>) -> Headers {
        let mut h = Headers::new();
        h.set_event_type(&self.event_type);
        h.set_timestamp(&self.timestamp);
        if let Some(v) = version {
            h.set_version(v);
        }
        h
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    if d.is_human_readable() {
        Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
    } else {
        BTreeMap::deserialize(d)
    }
}

/// `data` is JSON in JSON, and JSON text in binary formats (Avro has no "any" type).
mod data_json {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            v.serialize(s)
        } else {
            let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
            s.serialize_str(&text)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<serde_json::Value, D::Error> {
        if d.is_human_readable() {
            serde_json::Value::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text)
                .map_err(|e| serde::de::Error::custom(format!("event data is not JSON: {e}")))
        }
    }
}
