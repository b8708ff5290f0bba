//! Timestamps: RFC 3339 UTC text in JSON, Avro `timestamp-micros` (a `long`) in binary formats.
//! Precision is one microsecond everywhere, so a value survives every round trip unchanged.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// `t` cut to whole microseconds, the precision every representation keeps.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The current time, cut to microseconds.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// RFC 3339 text with microseconds and `Z`, as written in JSON and headers.
pub fn to_rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses RFC 3339 text (any offset, any fraction) into UTC cut to microseconds.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| truncate_micros(t.with_timezone(&Utc)))
}

/// Why `t` cannot be written back as RFC 3339 text (a year outside 0000..=9999), if it cannot:
/// such a time would be read once and then refused when written and read again.
pub(crate) fn out_of_rfc3339_range(t: &DateTime<Utc>) -> Option<String> {
    use chrono::Datelike;
    (!(0..=9999).contains(&t.year())).then(|| {
        format!(
            "year {} is outside 0000..=9999, which RFC 3339 cannot write",
            t.year()
        )
    })
}

pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&to_rfc3339(t))
    } else {
        s.serialize_i64(t.timestamp_micros())
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(TimeVisitor)
    } else {
        d.deserialize_i64(TimeVisitor)
    }
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or microseconds since the epoch")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = parse_rfc3339(v).map_err(|e| E::custom(format!("timestamp {v:?}: {e}")))?;
        match out_of_rfc3339_range(&t) {
            Some(why) => Err(E::custom(format!("timestamp {v:?}: {why}"))),
            None => Ok(t),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let t = DateTime::from_timestamp_micros(v)
            .ok_or_else(|| E::custom(format!("timestamp {v} µs is out of range")))?;
        match out_of_rfc3339_range(&t) {
            Some(why) => Err(E::custom(format!("timestamp {v} µs: {why}"))),
            None => Ok(t),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let v =
            i64::try_from(v).map_err(|_| E::custom(format!("timestamp {v} µs is out of range")))?;
        self.visit_i64(v)
    }

    fn visit_i32<E: de::Error>(self, v: i32) -> Result<Self::Value, E> {
        self.visit_i64(i64::from(v))
    }
}

/// Serde for UUIDs as their hyphenated text in every format (Avro `string` with `logicalType`
/// `uuid`, JSON string).
pub(crate) mod uuid_text {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use uuid::Uuid;

    pub(crate) fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Uuid::encode_buffer();
        s.serialize_str(id.hyphenated().encode_lower(&mut buf))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        d.deserialize_str(UuidVisitor)
    }

    struct UuidVisitor;

    impl Visitor<'_> for UuidVisitor {
        type Value = Uuid;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a UUID")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
            Uuid::parse_str(v).map_err(|e| E::custom(format!("id {v:?}: {e}")))
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Uuid, E> {
            Uuid::from_slice(v).map_err(|e| E::custom(format!("id: {e}")))
        }
    }
}
