//! Record headers: an ordered list that keeps duplicate keys, as Kafka does.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Header carrying the event type (`order.created`).
pub const EVENT_TYPE: &str = "event-type";
/// Header carrying the event's schema version (`1`).
pub const VERSION: &str = "version";
/// Header carrying the event time, RFC 3339.
pub const TIMESTAMP: &str = "timestamp";
/// W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// One record header. Kafka header values are bytes and may be absent (`None` = null).
///
/// The value is [`Bytes`], so a header read from a fetched batch can share the batch's buffer
/// instead of being copied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Key (Kafka requires UTF-8 keys).
    pub key: String,
    /// Value; `None` is Kafka's null value, distinct from an empty one.
    pub value: Option<Bytes>,
}

/// Record headers in wire order. Duplicate keys are kept: [`Headers::append`] adds one more,
/// [`Headers::insert`] replaces every entry of that key.
///
/// ```
/// use gregor_event::Headers;
/// let mut h = Headers::new();
/// h.append("x-seen-by", "a");
/// h.append("x-seen-by", "b");
/// h.set_event_type("order.created");
/// assert_eq!(h.get_all("x-seen-by").collect::<Vec<_>>(), [&b"a"[..], b"b"]);
/// assert_eq!(h.event_type(), Some("order.created"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Number of headers, duplicates included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a header at the end, keeping any with the same key.
    pub fn append(&mut self, key: impl Into<String>, value: impl AsRef<[u8]>) {
        self.0.push(Header {
            key: key.into(),
            value: Some(Bytes::copy_from_slice(value.as_ref())),
        });
    }

    /// Adds a header at the end whose value is already [`Bytes`] (no copy).
    pub fn append_bytes(&mut self, key: impl Into<String>, value: Bytes) {
        self.0.push(Header {
            key: key.into(),
            value: Some(value),
        });
    }

    /// Adds a header with a null value.
    pub fn append_null(&mut self, key: impl Into<String>) {
        self.0.push(Header {
            key: key.into(),
            value: None,
        });
    }

    /// Replaces every header named `key` with one holding `value`, at the position of the
    /// first one (or at the end).
    pub fn insert(&mut self, key: &str, value: impl AsRef<[u8]>) {
        let value = Some(Bytes::copy_from_slice(value.as_ref()));
        match self.0.iter().position(|h| h.key == key) {
            Some(first) => {
                self.0[first].value = value;
                let mut i = 0;
                self.0.retain(|h| {
                    let keep = h.key != key || i == first;
                    i += 1;
                    keep
                });
            }
            None => self.0.push(Header {
                key: key.to_owned(),
                value,
            }),
        }
    }

    /// Removes every header named `key`; returns how many there were.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|h| h.key != key);
        before - self.0.len()
    }

    /// The value of the last header named `key` (the most recent one wins, as in Kafka Streams'
    /// `lastHeader`); `None` if absent or null.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// The last value of `key` as UTF-8 text; `None` if absent, null or not UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every non-null value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |h| h.key == key)
            .filter_map(|h| h.value.as_deref())
    }

    /// All headers in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    /// `event-type`.
    pub fn event_type(&self) -> Option<&str> {
        self.get_str(EVENT_TYPE)
    }

    /// Sets `event-type` (replacing any).
    pub fn set_event_type(&mut self, event_type: &str) {
        self.insert(EVENT_TYPE, event_type);
    }

    /// `version`, parsed; a header that is present but not a number is an error.
    pub fn version(&self) -> Result<Option<u32>> {
        self.parsed(VERSION, |s| s.parse::<u32>().map_err(|e| e.to_string()))
    }

    /// Sets `version` (replacing any).
    pub fn set_version(&mut self, version: u32) {
        self.insert(VERSION, version.to_string());
    }

    /// `timestamp`, parsed as RFC 3339; present but unparsable is an error.
    pub fn timestamp(&self) -> Result<Option<DateTime<Utc>>> {
        self.parsed(TIMESTAMP, |s| {
            crate::time::parse_rfc3339(s).map_err(|e| e.to_string())
        })
    }

    /// Sets `timestamp` as RFC 3339 with microseconds (replacing any).
    pub fn set_timestamp(&mut self, t: &DateTime<Utc>) {
        self.insert(TIMESTAMP, crate::time::to_rfc3339(t));
    }

    /// `traceparent`, validated; present but malformed is an error.
    pub fn traceparent(&self) -> Result<Option<TraceParent>> {
        self.parsed(TRACEPARENT, TraceParent::parse)
    }

    /// Sets `traceparent` (replacing any).
    pub fn set_traceparent(&mut self, tp: &TraceParent) {
        self.insert(TRACEPARENT, tp.to_string());
    }

    fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, String>,
    ) -> Result<Option<T>> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let invalid = |reason: String| Error::InvalidHeader {
            name: key.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(raw).map_err(|e| invalid(e.to_string()))?;
        parse(text).map(Some).map_err(invalid)
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Headers {
    type Item = Header;
    type IntoIter = std::vec::IntoIter<Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Headers {
        Headers(iter.into_iter().collect())
    }
}

impl<K: Into<String>, V: AsRef<[u8]>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Headers {
        Headers(
            iter.into_iter()
                .map(|(k, v)| Header {
                    key: k.into(),
                    value: Some(Bytes::copy_from_slice(v.as_ref())),
                })
                .collect(),
        )
    }
}

/// A W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// Trace id (not all zero).
    pub trace_id: u128,
    /// Parent span id (not zero).
    pub parent_id: u64,
    /// Trace flags (bit 0 = sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses version `00` text.
    pub fn parse(text: &str) -> std::result::Result<TraceParent, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let [version, trace, parent, flags] = parts.as_slice() else {
            return Err(format!("{text:?} does not have four dash-separated fields"));
        };
        let hex = |s: &str, len: usize, what: &str| {
            if s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                Ok(())
            } else {
                Err(format!("{what} {s:?} is not {len} lowercase hex digits"))
            }
        };
        hex(version, 2, "version")?;
        if *version != "00" {
            return Err(format!("version {version:?} is not 00"));
        }
        hex(trace, 32, "trace id")?;
        hex(parent, 16, "parent id")?;
        hex(flags, 2, "flags")?;
        let parse_err = |e: std::num::ParseIntError| e.to_string();
        let tp = TraceParent {
            trace_id: u128::from_str_radix(trace, 16).map_err(parse_err)?,
            parent_id: u64::from_str_radix(parent, 16).map_err(parse_err)?,
            flags: u8::from_str_radix(flags, 16).map_err(parse_err)?,
        };
        if tp.trace_id == 0 || tp.parent_id == 0 {
            return Err("all-zero trace or parent id".into());
        }
        Ok(tp)
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_are_kept_in_order_and_insert_replaces_all() {
        let mut h = Headers::new();
        h.append("a", "1");
        h.append("b", "x");
        h.append("a", "2");
        h.append_null("a");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get_all("a").collect::<Vec<_>>(), [&b"1"[..], b"2"]);
        // The last one is null, so get() says so rather than falling back to an older value.
        assert_eq!(h.get("a"), None);
        h.insert("a", "3");
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(h.get_str("a"), Some("3"));
        assert_eq!(h.remove("a"), 1);
        assert_eq!(h.remove("a"), 0);
    }

    #[test]
    fn standard_headers_round_trip_and_reject_garbage() {
        let mut h = Headers::new();
        let t = crate::time::parse_rfc3339("2026-03-04T05:06:07.123456+02:00").unwrap();
        h.set_event_type("order.paid");
        h.set_version(3);
        h.set_timestamp(&t);
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        h.set_traceparent(&tp);
        assert_eq!(h.event_type(), Some("order.paid"));
        assert_eq!(h.version().unwrap(), Some(3));
        assert_eq!(h.timestamp().unwrap(), Some(t));
        assert_eq!(h.get_str(TIMESTAMP), Some("2026-03-04T03:06:07.123456Z"));
        assert_eq!(h.traceparent().unwrap(), Some(tp));
        assert!(tp.sampled());
        assert_eq!(
            tp.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );

        h.insert(VERSION, "three");
        assert!(matches!(h.version(), Err(Error::InvalidHeader { .. })));
        h.insert(TIMESTAMP, [0xff, 0xfe]);
        assert!(h.timestamp().is_err());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn traceparent_parse_never_panics(text in ".{0,80}") {
            let _ = TraceParent::parse(&text);
        }

        #[test]
        fn traceparent_round_trips(trace in 1u128.., parent in 1u64.., flags in any::<u8>()) {
            let tp = TraceParent { trace_id: trace, parent_id: parent, flags };
            prop_assert_eq!(TraceParent::parse(&tp.to_string()).unwrap(), tp);
        }
    }
}
