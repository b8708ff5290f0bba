//! The allocation guard: every array length a response declares is checked against the bytes
//! left before kafka-protocol decodes it.
//!
//! kafka-protocol's array decoders call `Vec::with_capacity(n)` with `n` read from the wire, so
//! a few hostile bytes could demand gigabytes and abort the process (kafka-protocol-rs#152,
//! #161, #200, open as of 0.18). [`check`] walks the response with its layout (generated from
//! kafka-protocol's own decoders into `schemas.rs`) and refuses any array, string or byte field
//! that claims more than remains, and any unknown tagged field that overruns the frame. Only
//! then is the frame handed to kafka-protocol.

/// One field of a response layout.
#[derive(Debug, Clone, Copy)]
#[allow(
    dead_code,
    reason = "the generator emits every wire type; the pinned layouts use a subset today"
)]
pub(crate) enum F {
    /// A fixed-width field (int8 .. int64, bool, uuid, float64).
    Fixed(usize),
    /// A zig-zag or unsigned varint.
    VarInt,
    /// A zig-zag varlong.
    VarLong,
    /// int16 length (-1 = null) + bytes.
    Str,
    /// unsigned varint length+1 (0 = null) + bytes.
    CStr,
    /// int32 length (-1 = null) + bytes.
    Bytes,
    /// unsigned varint length+1 (0 = null) + bytes.
    CBytes,
    /// int32 count (-1 = null) + elements.
    Arr(&'static [F]),
    /// unsigned varint count+1 (0 = null) + elements.
    CArr(&'static [F]),
    /// A single nested struct.
    Nested(&'static [F]),
    /// Tagged fields: known tags are decoded in place (as kafka-protocol does), others skipped.
    Tags(&'static [(u32, &'static [F])]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), String> {
        if n > self.remaining() {
            return Err(format!(
                "{what} of {n} bytes at byte {} overruns the {}-byte frame",
                self.pos,
                self.buf.len()
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn int(&mut self, width: usize) -> Result<i64, String> {
        if width > self.remaining() {
            return Err(format!("frame ends at byte {} inside a field", self.pos));
        }
        let mut v: i64 = 0;
        for b in &self.buf[self.pos..self.pos + width] {
            v = (v << 8) | i64::from(*b);
        }
        self.pos += width;
        // Sign-extend.
        let shift = 64 - 8 * width as u32;
        Ok((v << shift) >> shift)
    }

    /// An unsigned varint as kafka-protocol's `UnsignedVarInt` (and `VarInt`) reads it: at
    /// most five bytes into a `u32`. It stops after the fifth byte whatever its continuation
    /// bit says, so a longer varint would make it read the bytes that follow as the next field
    /// while this guard had skipped them: such a varint is refused here (Java's client refuses
    /// it too). Bits beyond 32 of the fifth byte drop, as in kafka-protocol.
    fn uvarint(&mut self) -> Result<u64, String> {
        self.varint(5).map(|v| v & u64::from(u32::MAX))
    }

    /// A zig-zag varlong: at most ten bytes.
    fn varlong(&mut self) -> Result<u64, String> {
        self.varint(10)
    }

    /// The 7-bit groups of a varint of at most `max_bytes` bytes (at most 10), low group first.
    fn varint(&mut self, max_bytes: u32) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("frame ends at byte {} inside a varint", self.pos));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "varint longer than {max_bytes} bytes at byte {}",
            self.pos
        ))
    }

    /// An element count whose elements (each at least `min` bytes) fit in the bytes left.
    fn count(&mut self, n: u64, min: usize) -> Result<u64, String> {
        let need = n.saturating_mul(min.max(1) as u64);
        if need > self.remaining() as u64 {
            return Err(format!(
                "array declares {n} elements of at least {min} bytes with {} bytes left",
                self.remaining()
            ));
        }
        Ok(n)
    }
}

/// Checks `body` (the response after its header) against `layout`.
pub(crate) fn check(layout: &[F], body: &[u8]) -> Result<(), String> {
    let mut r = Reader { buf: body, pos: 0 };
    walk(&mut r, layout)
}

/// The fewest bytes a struct with this layout can take on the wire.
fn min_size(fields: &[F]) -> usize {
    fields
        .iter()
        .map(|f| match f {
            F::Fixed(n) => *n,
            F::VarInt | F::VarLong | F::CStr | F::CBytes | F::CArr(_) | F::Tags(_) => 1,
            F::Str => 2,
            F::Bytes | F::Arr(_) => 4,
            F::Nested(inner) => min_size(inner),
        })
        .sum()
}

fn walk(r: &mut Reader<'_>, fields: &[F]) -> Result<(), String> {
    for f in fields {
        match *f {
            F::Fixed(n) => r.skip(n, "field")?,
            F::VarInt => {
                r.uvarint()?;
            }
            F::VarLong => {
                r.varlong()?;
            }
            F::Str => {
                let n = r.int(2)?;
                if n > 0 {
                    r.skip(n as usize, "string")?;
                }
            }
            F::Bytes => {
                let n = r.int(4)?;
                if n > 0 {
                    r.skip(n as usize, "bytes")?;
                }
            }
            F::CStr | F::CBytes => {
                let n = r.uvarint()?;
                if n > 1 {
                    let len = usize::try_from(n - 1).map_err(|_| "length overflow".to_owned())?;
                    r.skip(len, "compact string")?;
                }
            }
            F::Arr(elem) => {
                let n = r.int(4)?;
                if n > 0 {
                    let n = r.count(n as u64, min_size(elem))?;
                    for _ in 0..n {
                        walk(r, elem)?;
                    }
                }
            }
            F::CArr(elem) => {
                let n = r.uvarint()?;
                if n > 1 {
                    let n = r.count(n - 1, min_size(elem))?;
                    for _ in 0..n {
                        walk(r, elem)?;
                    }
                }
            }
            F::Nested(inner) => walk(r, inner)?,
            F::Tags(known) => {
                let n = r.uvarint()?;
                let n = r.count(n, 2)?;
                for _ in 0..n {
                    let tag = r.uvarint()?;
                    let size = r.uvarint()?;
                    let size = usize::try_from(size).map_err(|_| "tag size overflow".to_owned())?;
                    match known.iter().find(|(t, _)| u64::from(*t) == tag) {
                        Some((_, inner)) => walk(r, inner)?,
                        None => r.skip(size, "tagged field")?,
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::schemas;

    #[test]
    fn huge_counts_are_refused_before_decoding() {
        // Metadata v12: throttle, then a compact broker array claiming 2^32 - 2 entries.
        let body = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let e = check(schemas::METADATA_RESPONSE_V12, &body).unwrap_err();
        assert!(e.contains("array declares"), "{e}");
        // ApiVersions v0: error code, then an int32 array count of i32::MAX.
        let body = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(check(schemas::API_VERSIONS_RESPONSE_V0, &body).is_err());
    }

    #[test]
    fn well_formed_bodies_pass() {
        // ApiVersions v0: no error, one api (key 18, versions 0..=3).
        let body = [0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3];
        check(schemas::API_VERSIONS_RESPONSE_V0, &body).unwrap();
        // Heartbeat v4: throttle, error code, no tagged fields.
        check(schemas::HEARTBEAT_RESPONSE_V4, &[0, 0, 0, 0, 0, 0, 0]).unwrap();
    }

    #[test]
    fn strings_and_tags_cannot_overrun() {
        // SyncGroup v5: throttle, error, protocol type claiming 200 bytes.
        let body = [0, 0, 0, 0, 0, 0, 201, 1];
        assert!(check(schemas::SYNC_GROUP_RESPONSE_V5, &body).is_err());
        // Heartbeat v4 with an unknown tagged field claiming 100 bytes.
        let body = [0, 0, 0, 0, 0, 0, 1, 9, 100, 1, 2];
        assert!(check(schemas::HEARTBEAT_RESPONSE_V4, &body).is_err());
    }
}
