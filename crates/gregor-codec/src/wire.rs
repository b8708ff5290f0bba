//! The Confluent wire format: byte 0 is the magic byte `0x00`, bytes 1-4 the schema id
//! (big-endian), then the datum.
//!
//! ```text
//! ┌──────┬───────────────────┬──────────────────────┐
//! │ 0x00 │ schema id (u32 BE)│ Avro binary datum ... │
//! └──────┴───────────────────┴──────────────────────┘
//! ```

use crate::error::{Error, Location, Result};

/// Magic byte of the Confluent framing.
pub const MAGIC: u8 = 0;
/// Header length: magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Splits a framed payload into its schema id and datum. Ids at or above 2^31 are negative as
/// the Java `int` Confluent uses and are refused here, before any registry call.
pub fn parse(payload: &[u8], at: impl FnOnce() -> Location) -> Result<(u32, &[u8])> {
    let Some((header, datum)) = payload.split_first_chunk::<HEADER_LEN>() else {
        return Err(Error::ShortPayload {
            at: at(),
            len: payload.len(),
        });
    };
    if header[0] != MAGIC {
        return Err(Error::BadMagic {
            at: at(),
            magic: header[0],
        });
    }
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if i32::try_from(id).is_err() {
        return Err(Error::NegativeSchemaId {
            at: at(),
            id: i32::from_be_bytes([header[1], header[2], header[3], header[4]]),
        });
    }
    Ok((id, datum))
}

/// Starts a framed payload for `id` in `buf` (cleared first).
pub fn write_header(buf: &mut Vec<u8>, id: u32) {
    buf.clear();
    buf.push(MAGIC);
    buf.extend_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn here() -> Location {
        Location {
            topic: "t".into(),
            partition: Some(1),
            offset: Some(9),
            key: false,
        }
    }

    #[test]
    fn parses_and_refuses() {
        let mut buf = Vec::new();
        write_header(&mut buf, 0x0102_0304);
        buf.extend_from_slice(b"datum");
        assert_eq!(parse(&buf, here).unwrap(), (0x0102_0304, &b"datum"[..]));
        assert!(matches!(parse(&buf[..5], here), Ok((_, d)) if d.is_empty()));
        for len in 0..5 {
            assert!(
                matches!(parse(&buf[..len], here), Err(Error::ShortPayload { len: l, .. }) if l == len)
            );
        }
        let err = parse(&[1, 0, 0, 0, 1], here).unwrap_err();
        assert!(matches!(err, Error::BadMagic { magic: 1, .. }));
        assert!(
            err.to_string().contains("topic t partition 1 offset 9"),
            "{err}"
        );
        assert!(matches!(
            parse(&[0, 0xff, 0xff, 0xff, 0xff], here),
            Err(Error::NegativeSchemaId { id: -1, .. })
        ));
        assert!(matches!(
            parse(&[0, 0x80, 0, 0, 0], here),
            Err(Error::NegativeSchemaId { id: i32::MIN, .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            match parse(&bytes, here) {
                Ok((id, datum)) => {
                    prop_assert_eq!(bytes[0], 0);
                    prop_assert!(id <= i32::MAX as u32);
                    prop_assert_eq!(datum, &bytes[5..]);
                }
                Err(Error::ShortPayload { len, .. }) => prop_assert!(len < 5),
                Err(Error::BadMagic { magic, .. }) => prop_assert_ne!(magic, 0),
                Err(Error::NegativeSchemaId { id, .. }) => prop_assert!(id < 0),
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }

        #[test]
        fn header_round_trips(id in 0u32..=i32::MAX as u32, datum in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut buf = Vec::new();
            write_header(&mut buf, id);
            buf.extend_from_slice(&datum);
            prop_assert_eq!(parse(&buf, here).unwrap(), (id, datum.as_slice()));
        }
    }
}
