//! CloudEvents 1.0 binary content mode for Kafka, both ways.
//!
//! | CloudEvents attribute | Kafka header | [`Event`] |
//! | --- | --- | --- |
//! | `specversion` | `ce_specversion` = `1.0` | (implied) |
//! | `id` | `ce_id` | `id` (must be a UUID) |
//! | `source` | `ce_source` | `source` |
//! | `type` | `ce_type` | `type` |
//! | `time` | `ce_time` (RFC 3339) | `timestamp` |
//! | `datacontenttype` | `content-type` | JSON on the way out; JSON or text on the way in |
//! | extension `x` | `ce_x` | `metadata["x"]` |
//! | data | record value | `data` |
//!
//! Metadata keys become extension attributes, so they must be valid CloudEvents attribute
//! names (lowercase letters and digits, at most 20 characters); `subject` and `dataschema`
//! travel as the optional attributes of those names.

use crate::envelope::Event;
use crate::error::{Error, Result};
use crate::headers::Headers;

/// The `ce_specversion` gregor writes and accepts.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of JSON data.
pub const JSON: &str = "application/json";
const PREFIX: &str = "ce_";
const CONTENT_TYPE: &str = "content-type";
/// Attributes that metadata may not shadow.
const RESERVED: [&str; 7] = [
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "time",
    "data",
];

fn valid_extension(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !RESERVED.contains(&name)
}

/// The headers and value of `event` in binary content mode (data as JSON).
pub fn to_binary(event: &Event) -> Result<(Headers, Vec<u8>)> {
    let mut h = Headers::new();
    h.append("ce_specversion", SPEC_VERSION);
    h.append("ce_id", event.id.hyphenated().to_string());
    h.append("ce_source", &event.source);
    h.append("ce_type", &event.event_type);
    h.append("ce_time", crate::time::to_rfc3339(&event.timestamp));
    h.append(CONTENT_TYPE, JSON);
    for (key, value) in &event.metadata {
        if !valid_extension(key) {
            return Err(Error::InvalidExtensionName { key: key.clone() });
        }
        h.append(format!("{PREFIX}{key}"), value);
    }
    let value = serde_json::to_vec(&event.data).map_err(|source| Error::Json {
        what: format!("writing the data of event {}", event.id),
        source,
    })?;
    Ok((h, value))
}

/// Reads a binary-mode CloudEvent. `value` is the record value (`None` for a tombstone, read
/// as JSON `null` data). Required attributes missing or invalid are errors naming the header.
pub fn from_binary(headers: &Headers, value: Option<&[u8]>) -> Result<Event> {
    let required = |name: &str| -> Result<&str> {
        let raw = headers.get(name).ok_or_else(|| Error::MissingHeader {
            name: name.to_owned(),
        })?;
        std::str::from_utf8(raw).map_err(|e| Error::InvalidHeader {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    };
    let spec = required("ce_specversion")?;
    if spec != SPEC_VERSION {
        return Err(Error::InvalidHeader {
            name: "ce_specversion".into(),
            reason: format!("{spec:?} is not {SPEC_VERSION}"),
        });
    }
    let id_text = required("ce_id")?;
    let id = uuid::Uuid::parse_str(id_text).map_err(|e| Error::InvalidHeader {
        name: "ce_id".into(),
        reason: format!("{id_text:?} is not a UUID: {e}"),
    })?;
    let source = required("ce_source")?.to_owned();
    let event_type = required("ce_type")?.to_owned();
    let timestamp = match headers.get("ce_time") {
        None => {
            return Err(Error::MissingHeader {
                name: "ce_time".into(),
            });
        }
        Some(_) => {
            let text = required("ce_time")?;
            let t = crate::time::parse_rfc3339(text).map_err(|e| Error::InvalidHeader {
                name: "ce_time".into(),
                reason: format!("{text:?}: {e}"),
            })?;
            if let Some(why) = crate::time::out_of_rfc3339_range(&t) {
                return Err(Error::InvalidHeader {
                    name: "ce_time".into(),
                    reason: format!("{text:?}: {why}"),
                });
            }
            t
        }
    };
    let content_type = headers
        .get_str(CONTENT_TYPE)
        .unwrap_or(JSON)
        .trim()
        .to_ascii_lowercase();
    let data = match value {
        None => serde_json::Value::Null,
        Some(bytes) => read_data(&content_type, bytes)?,
    };
    let mut metadata = std::collections::BTreeMap::new();
    for h in headers {
        let Some(name) = h.key.strip_prefix(PREFIX) else {
            continue;
        };
        if matches!(name, "specversion" | "id" | "source" | "type" | "time") {
            continue;
        }
        // What to_binary could not write back is not a CloudEvents attribute: refuse it here,
        // so an event read from Kafka can always be written again (dead-lettered, replayed).
        if !valid_extension(name) {
            return Err(Error::InvalidHeader {
                name: h.key.clone(),
                reason: "a CloudEvents extension name is 1 to 20 lowercase letters or digits and \
                         not a reserved attribute"
                    .into(),
            });
        }
        let Some(raw) = &h.value else { continue };
        let text = std::str::from_utf8(raw).map_err(|e| Error::InvalidHeader {
            name: h.key.clone(),
            reason: e.to_string(),
        })?;
        metadata.insert(name.to_owned(), text.to_owned());
    }
    Ok(Event {
        id,
        event_type,
        timestamp,
        source,
        data,
        metadata,
    })
}

fn read_data(content_type: &str, bytes: &[u8]) -> Result<serde_json::Value> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let is_json = media == JSON || media == "text/json" || media.ends_with("+json");
    if is_json {
        return serde_json::from_slice(bytes).map_err(|e| Error::UnsupportedData {
            content_type: content_type.to_owned(),
            reason: e.to_string(),
        });
    }
    if media.starts_with("text/") {
        return std::str::from_utf8(bytes)
            .map(|s| serde_json::Value::String(s.to_owned()))
            .map_err(|e| Error::UnsupportedData {
                content_type: content_type.to_owned(),
                reason: e.to_string(),
            });
    }
    Err(Error::UnsupportedData {
        content_type: content_type.to_owned(),
        reason: "only JSON and text data fit the envelope".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Event {
        Event::new(
            "order.created",
            "/orders",
            serde_json::json!({"order_id": "o1", "n": [1, 2.5, null]}),
        )
        .with_metadata("region", "eu1")
        .with_metadata("subject", "o1")
    }

    #[test]
    fn binary_mode_round_trip() {
        let e = sample();
        let (h, value) = to_binary(&e).unwrap();
        assert_eq!(h.get_str("ce_specversion"), Some("1.0"));
        assert_eq!(h.get_str("ce_type"), Some("order.created"));
        assert_eq!(h.get_str("ce_source"), Some("/orders"));
        assert_eq!(h.get_str("content-type"), Some("application/json"));
        assert_eq!(h.get_str("ce_region"), Some("eu1"));
        assert_eq!(h.get_str("ce_subject"), Some("o1"));
        assert_eq!(from_binary(&h, Some(&value)).unwrap(), e);
    }

    #[test]
    fn reads_what_other_cloudevents_producers_write() {
        let h: Headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", "0b7a7a8e-7a7e-4c1a-9a57-0d4a3e1f2b3c"),
            ("ce_source", "https://example.com/x"),
            ("ce_type", "com.example.thing"),
            ("ce_time", "2026-01-01T12:00:00+01:00"),
            ("content-type", "text/plain; charset=utf-8"),
            (
                "ce_traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]
        .into_iter()
        .collect();
        let e = from_binary(&h, Some(b"hello")).unwrap();
        assert_eq!(e.data, serde_json::json!("hello"));
        assert_eq!(
            crate::time::to_rfc3339(&e.timestamp),
            "2026-01-01T11:00:00.000000Z"
        );
        assert!(e.metadata.contains_key("traceparent"));
        assert_eq!(from_binary(&h, None).unwrap().data, serde_json::Value::Null);
    }

    #[test]
    fn missing_and_invalid_attributes_are_named() {
        let (h, v) = to_binary(&sample()).unwrap();
        for name in ["ce_id", "ce_source", "ce_type", "ce_time", "ce_specversion"] {
            let mut h2 = h.clone();
            h2.remove(name);
            match from_binary(&h2, Some(&v)) {
                Err(Error::MissingHeader { name: n }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut h2 = h.clone();
        h2.insert("ce_specversion", "0.3");
        assert!(matches!(
            from_binary(&h2, Some(&v)),
            Err(Error::InvalidHeader { .. })
        ));
        let mut h2 = h.clone();
        h2.insert("ce_id", "not-a-uuid");
        assert!(matches!(
            from_binary(&h2, Some(&v)),
            Err(Error::InvalidHeader { .. })
        ));
        let mut h2 = h.clone();
        h2.insert("content-type", "application/octet-stream");
        assert!(matches!(
            from_binary(&h2, Some(&v)),
            Err(Error::UnsupportedData { .. })
        ));
        assert!(matches!(
            from_binary(&h, Some(b"{not json")),
            Err(Error::UnsupportedData { .. })
        ));
        for key in [
            "Region",
            "with-dash",
            "id",
            "time",
            "averyveryverylongextensionname",
        ] {
            let e = sample().with_metadata(key, "x");
            assert!(
                matches!(to_binary(&e), Err(Error::InvalidExtensionName { .. })),
                "{key}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_headers_and_values_never_panic(
            hs in proptest::collection::vec(("(ce_)?[a-z_-]{0,12}", proptest::collection::vec(any::<u8>(), 0..40)), 0..10),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        ) {
            let headers: Headers = hs.into_iter().collect();
            let _ = from_binary(&headers, value.as_deref());
        }
    }
}
