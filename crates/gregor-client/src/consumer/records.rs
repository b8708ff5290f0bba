//! The record-batch decoder: Kafka's magic v2 batches as a Fetch response carries them.
//!
//! ```text
//! records bytes ─▶ batch header (61 B) ─▶ CRC32C over attributes..end ─▶ control? transactional?
//!                    │ partial tail: stop                                   │ aborted: skip batch
//!                    ▼                                                      ▼
//!                 decompress (gzip, snappy, lz4, zstd; at most 64 MiB) ─▶ records ─▶ Record
//! ```
//!
//! Every length read from the bytes (batch length, record length, key, value, header count,
//! header key and value) is checked against the bytes left before anything is allocated, and
//! decompression stops at [`MAX_DECOMPRESSED`]. Anything wrong is a [`Corrupt`] naming the
//! offset where it starts and, when the batch header could be read, the offset after it, so
//! the caller's policy can stop or step over it; records are never dropped silently.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

/// Most bytes one compressed batch may expand to. Producers cap an uncompressed batch at
/// `batch.size` (16 KiB by default, rarely above a few MiB); a larger expansion is treated as a
/// corrupt batch (or a compression bomb), not allocated.
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Size of the v2 batch header: base offset through record count.
const HEADER: usize = 61;
/// Bytes before the batch length field and the length field itself.
const LOG_OVERHEAD: usize = 12;
/// The fewest bytes a record can take (length, attributes, timestamp delta, offset delta, key
/// length, value length, header count: one byte each).
const MIN_RECORD: usize = 7;

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampType {
    /// Set by the producer (`message.timestamp.type=CreateTime`).
    CreateTime,
    /// Set by the broker when appended (`LogAppendTime`).
    LogAppendTime,
}

/// One record header. Kafka allows the same key more than once; order and duplicates are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// Header key (invalid UTF-8 is replaced, as the Java client does).
    pub key: String,
    /// Header value; `None` is a null value, distinct from an empty one.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header.
    pub fn new(key: impl Into<String>, value: Option<Bytes>) -> Header {
        Header {
            key: key.into(),
            value,
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Who set the timestamp.
    pub timestamp_type: TimestampType,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Value; `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in the order they were written, duplicates included.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with no key, headers or timestamp (for tests of code that handles records).
    pub fn new(topic: &str, partition: i32, offset: i64, value: Option<Bytes>) -> Record {
        Record {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp: 0,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value,
            headers: Vec::new(),
        }
    }

    /// The first header with this key.
    pub fn header(&self, key: &str) -> Option<&Header> {
        self.headers.iter().find(|h| h.key == key)
    }

    /// The offset to commit once this record is processed: `offset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.offset + 1
    }
}

/// Bytes that are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt {
    /// The first offset affected.
    pub(crate) offset: i64,
    /// The offset after the affected batch, when its header could be read (a policy that
    /// steps over corrupt data resumes there); `None` when the batch's extent is unknown.
    pub(crate) resume_at: Option<i64>,
    /// What is wrong.
    pub(crate) message: String,
}

/// What one partition's records bytes decoded to.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Records at or after the fetch offset, in offset order.
    pub(crate) records: Vec<Record>,
    /// The offset after the last complete batch read (the next fetch offset), if any batch was
    /// complete; a fetch that ends in control or aborted batches still moves forward.
    pub(crate) next_offset: Option<i64>,
    /// Bytes of the complete batches read.
    pub(crate) bytes: usize,
    /// Set when decoding stopped at corrupt data (records before it are in `records`).
    pub(crate) corrupt: Option<Corrupt>,
}

/// Decoding settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Verify CRC32C (`check.crcs`).
    pub(crate) check_crc: bool,
    /// Drop records of aborted transactions and control batches' data (`read_committed`).
    pub(crate) read_committed: bool,
}

/// An aborted transaction from the Fetch response: producer id and its first offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Aborted {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
}

/// Decodes the records of one partition from a Fetch response.
///
/// `fetch_offset` is the offset asked for: records before it (a compressed batch is returned
/// whole) are left out. `aborted` is the response's aborted-transactions list (used only with
/// `read_committed`).
pub(crate) fn decode(
    topic: &Arc<str>,
    partition: i32,
    data: &Bytes,
    fetch_offset: i64,
    aborted: &[Aborted],
    opts: Options,
) -> Decoded {
    let mut out = Decoded::default();
    let mut pending_aborts: Vec<Aborted> = if opts.read_committed {
        let mut v = aborted.to_vec();
        // Consumed from the end: lowest first offset last.
        v.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
        v
    } else {
        Vec::new()
    };
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut pos = 0usize;
    while data.len() - pos >= LOG_OVERHEAD {
        let base_offset = be_i64(&data[pos..]);
        let batch_len = be_i32(&data[pos + 8..]);
        let Some(batch_len) = usize::try_from(batch_len)
            .ok()
            .filter(|&l| l >= HEADER - LOG_OVERHEAD)
        else {
            out.corrupt = Some(Corrupt {
                offset: base_offset.max(fetch_offset),
                resume_at: None,
                message: format!(
                    "batch at offset {base_offset} declares length {batch_len}, below the {}-byte header",
                    HEADER - LOG_OVERHEAD
                ),
            });
            return out;
        };
        let total = LOG_OVERHEAD + batch_len;
        if data.len() - pos < total {
            // A partial batch at the end of a fetch is normal: the broker cuts at the size
            // limit. A partial batch with nothing before it would never make progress.
            if out.next_offset.is_none() && out.records.is_empty() {
                out.corrupt = Some(Corrupt {
                    offset: base_offset.max(fetch_offset),
                    resume_at: None,
                    message: format!(
                        "the fetch returned {} bytes of a {total}-byte batch and no complete batch; \
                         raise max.partition.fetch.bytes and fetch.max.bytes",
                        data.len() - pos
                    ),
                });
            }
            return out;
        }
        let batch = data.slice(pos..pos + total);
        pos += total;
        let magic = batch[16] as i8;
        if magic != 2 {
            out.corrupt = Some(Corrupt {
                offset: base_offset.max(fetch_offset),
                resume_at: None,
                message: format!(
                    "batch at offset {base_offset} has magic {magic}; gregor reads magic 2 (Kafka 0.11 and later)"
                ),
            });
            return out;
        }
        let attributes = be_i16(&batch[21..]);
        let last_offset_delta = be_i32(&batch[23..]);
        let last_offset = base_offset.saturating_add(i64::from(last_offset_delta));
        let resume_at = last_offset.saturating_add(1);
        if opts.check_crc {
            let stored = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
            let computed = crc32c::crc32c(&batch[21..]);
            if stored != computed {
                out.corrupt = Some(Corrupt {
                    offset: base_offset.max(fetch_offset),
                    resume_at: Some(resume_at),
                    message: format!(
                        "batch at offsets {base_offset}..={last_offset} fails its CRC32C check \
                         (stored {stored:#010x}, computed {computed:#010x})"
                    ),
                });
                return out;
            }
        }
        let producer_id = be_i64(&batch[43..]);
        let transactional = attributes & 0x10 != 0;
        let control = attributes & 0x20 != 0;
        if opts.read_committed && transactional {
            while let Some(a) = pending_aborts.last().copied() {
                if a.first_offset > last_offset {
                    break;
                }
                pending_aborts.pop();
                aborting.insert(a.producer_id);
            }
        }
        if control {
            // One control record: key = version (int16), type (int16: 0 abort, 1 commit).
            if opts.read_committed
                && control_type(&batch) == Some(0)
                && aborting.remove(&producer_id)
            {
                // The abort marker ends that producer's aborted transaction.
            }
            out.next_offset = Some(resume_at);
            out.bytes += total;
            continue;
        }
        if opts.read_committed && transactional && aborting.contains(&producer_id) {
            out.next_offset = Some(resume_at);
            out.bytes += total;
            continue;
        }
        if last_offset < fetch_offset {
            out.next_offset = Some(resume_at);
            out.bytes += total;
            continue;
        }
        let before = out.records.len();
        match decode_batch(
            topic,
            partition,
            &batch,
            attributes,
            fetch_offset,
            &mut out.records,
        ) {
            Ok(()) => {
                out.next_offset = Some(resume_at);
                out.bytes += total;
            }
            Err((offset, message)) => {
                let offset = offset.unwrap_or_else(|| {
                    out.records[before..]
                        .last()
                        .map_or(base_offset, |r| r.offset + 1)
                });
                out.corrupt = Some(Corrupt {
                    offset: offset.max(fetch_offset),
                    resume_at: Some(resume_at),
                    message: format!("batch at offsets {base_offset}..={last_offset}: {message}"),
                });
                return out;
            }
        }
    }
    out
}

/// The control record's type, if the batch's first record has a readable control key.
fn control_type(batch: &Bytes) -> Option<i16> {
    let mut c = Cursor::new(batch.slice(HEADER..));
    c.varint().ok()?; // record length
    c.take(1).ok()?; // attributes
    c.varlong().ok()?; // timestamp delta
    c.varint().ok()?; // offset delta
    let key = c.nullable_bytes().ok()??;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
}

type BatchError = (Option<i64>, String);

fn decode_batch(
    topic: &Arc<str>,
    partition: i32,
    batch: &Bytes,
    attributes: i16,
    fetch_offset: i64,
    out: &mut Vec<Record>,
) -> Result<(), BatchError> {
    let base_offset = be_i64(&batch[0..]);
    let base_timestamp = be_i64(&batch[27..]);
    let max_timestamp = be_i64(&batch[35..]);
    let log_append = attributes & 0x08 != 0;
    let count = be_i32(&batch[57..]);
    let count = usize::try_from(count).map_err(|_| (None, format!("record count {count}")))?;
    let body = batch.slice(HEADER..);
    let body = match attributes & 0x07 {
        0 => body,
        codec => decompress(codec, &body).map_err(|m| (None, m))?,
    };
    if count.saturating_mul(MIN_RECORD) > body.len() {
        return Err((
            None,
            format!(
                "declares {count} records in {} bytes (each takes at least {MIN_RECORD})",
                body.len()
            ),
        ));
    }
    // The declared count is checked against the bytes, but a Record is far larger than its
    // 7-byte minimum on the wire: reserve a bounded amount up front and let the rest grow with
    // what is actually decoded (fuzz finding: up to ~1 GB reserved for a 64 MiB body).
    out.reserve(count.min(4096));
    let mut c = Cursor::new(body);
    for i in 0..count {
        let record = read_record(&mut c).map_err(|m| {
            (
                None,
                format!("record {i} of {count} (after offset {base_offset}+{i}) undecodable: {m}"),
            )
        })?;
        let offset = base_offset.saturating_add(record.offset_delta);
        if offset < fetch_offset {
            continue;
        }
        out.push(Record {
            topic: Arc::clone(topic),
            partition,
            offset,
            timestamp: if log_append {
                max_timestamp
            } else {
                base_timestamp.saturating_add(record.timestamp_delta)
            },
            timestamp_type: if log_append {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
    }
    if c.remaining() != 0 {
        return Err((
            None,
            format!("{} bytes left after the last record", c.remaining()),
        ));
    }
    Ok(())
}

struct RawRecord {
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

fn read_record(c: &mut Cursor) -> Result<RawRecord, String> {
    let len = c.varint()?;
    let len = usize::try_from(len).map_err(|_| format!("record length {len}"))?;
    if len > c.remaining() {
        return Err(format!(
            "record length {len} overruns the {} bytes left",
            c.remaining()
        ));
    }
    let end = c.pos + len;
    let mut r = Cursor::new(c.buf.slice(c.pos..end));
    c.pos = end;
    r.take(1)?; // attributes: unused in v2
    let timestamp_delta = r.varlong()?;
    let offset_delta = i64::from(r.varint()?);
    let key = r.nullable_bytes()?;
    let value = r.nullable_bytes()?;
    let n = r.varint()?;
    let n = usize::try_from(n).map_err(|_| format!("header count {n}"))?;
    if n.saturating_mul(2) > r.remaining() {
        return Err(format!("declares {n} headers in {} bytes", r.remaining()));
    }
    let mut headers = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let key = r
            .nullable_bytes()?
            .ok_or_else(|| "a header has a null key".to_owned())?;
        let value = r.nullable_bytes()?;
        headers.push(Header {
            key: String::from_utf8_lossy(&key).into_owned(),
            value,
        });
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} bytes left inside the record after its headers",
            r.remaining()
        ));
    }
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Decompresses a batch body, refusing to produce more than [`MAX_DECOMPRESSED`] bytes.
fn decompress(codec: i16, data: &[u8]) -> Result<Bytes, String> {
    match codec {
        1 => read_bounded(flate2::read::GzDecoder::new(data), "gzip"),
        2 => snappy(data),
        3 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| format!("lz4 frame header: {e}"))?;
            read_bounded(decoder, "lz4")
        }
        4 => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| format!("zstd: {e}"))?;
            read_bounded(decoder, "zstd")
        }
        other => Err(format!("unknown compression codec {other}")),
    }
}

fn read_bounded(reader: impl Read, codec: &str) -> Result<Bytes, String> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_DECOMPRESSED).unwrap_or(u64::MAX) + 1;
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("{codec} data undecodable: {e}"))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(format!(
            "{codec} data expands past {MAX_DECOMPRESSED} bytes"
        ));
    }
    Ok(Bytes::from(out))
}

/// Kafka's snappy is the xerial framing of the Java client (a magic header, then
/// length-prefixed raw blocks); some producers write one raw block instead. Both are read.
fn snappy(data: &[u8]) -> Result<Bytes, String> {
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |chunk: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        let n = snap::raw::decompress_len(chunk).map_err(|e| format!("snappy: {e}"))?;
        if out.len().saturating_add(n) > MAX_DECOMPRESSED {
            return Err(format!("snappy data expands past {MAX_DECOMPRESSED} bytes"));
        }
        let start = out.len();
        out.resize(start + n, 0);
        decoder
            .decompress(chunk, &mut out[start..])
            .map_err(|e| format!("snappy: {e}"))?;
        Ok(())
    };
    let mut out = Vec::new();
    if data.len() >= 16 && data.starts_with(XERIAL_MAGIC) {
        let mut rest = &data[16..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err("snappy: truncated xerial block length".into());
            }
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest = &rest[4..];
            if n > rest.len() {
                return Err(format!(
                    "snappy: xerial block of {n} bytes with {} left",
                    rest.len()
                ));
            }
            block(&rest[..n], &mut out)?;
            rest = &rest[n..];
        }
    } else {
        block(data, &mut out)?;
    }
    Ok(Bytes::from(out))
}

/// A reader over `Bytes` whose slices share the buffer (keys and values are not copied).
struct Cursor {
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    fn new(buf: Bytes) -> Cursor {
        Cursor { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        if n > self.remaining() {
            return Err(format!("{n} bytes declared with {} left", self.remaining()));
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn uvarint(&mut self, max_bytes: u32) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("bytes end inside a varint".into());
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than {max_bytes} bytes"))
    }

    /// A zig-zag varint (int32).
    fn varint(&mut self) -> Result<i32, String> {
        let v = self.uvarint(5)?;
        let v = u32::try_from(v).map_err(|_| "varint overflows 32 bits".to_owned())?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zig-zag varlong (int64).
    fn varlong(&mut self) -> Result<i64, String> {
        let v = self.uvarint(10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Varint length (-1: null) and the bytes.
    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, String> {
        let n = self.varint()?;
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(format!("length {n}")),
            n => self.take(n as usize).map(Some),
        }
    }
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

/// Encoding, for tests: the inverse of [`decode`] for the batches a producer writes.
#[cfg(test)]
pub(crate) mod encode {
    use super::*;

    fn zigzag32(v: i32, out: &mut Vec<u8>) {
        uvarint(((v << 1) ^ (v >> 31)) as u32 as u64, out);
    }

    fn zigzag64(v: i64, out: &mut Vec<u8>) {
        uvarint(((v << 1) ^ (v >> 63)) as u64, out);
    }

    fn uvarint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes(b: &Option<Vec<u8>>, out: &mut Vec<u8>) {
        match b {
            None => zigzag32(-1, out),
            Some(b) => {
                zigzag32(b.len() as i32, out);
                out.extend_from_slice(b);
            }
        }
    }

    /// A record to encode: key, value, headers.
    #[derive(Debug, Clone)]
    pub(crate) struct Rec {
        pub(crate) key: Option<Vec<u8>>,
        pub(crate) value: Option<Vec<u8>>,
        pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
        pub(crate) timestamp_delta: i64,
    }

    /// A magic v2 batch. `codec`: 0 none, 1 gzip, 2 snappy (xerial), 3 lz4, 4 zstd.
    pub(crate) fn batch(
        base_offset: i64,
        base_timestamp: i64,
        records: &[Rec],
        codec: i16,
        producer: Option<(i64, bool)>,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut rec = vec![0u8];
            zigzag64(r.timestamp_delta, &mut rec);
            zigzag32(i as i32, &mut rec);
            bytes(&r.key, &mut rec);
            bytes(&r.value, &mut rec);
            zigzag32(r.headers.len() as i32, &mut rec);
            for (k, v) in &r.headers {
                bytes(&Some(k.clone().into_bytes()), &mut rec);
                bytes(v, &mut rec);
            }
            zigzag32(rec.len() as i32, &mut body);
            body.extend_from_slice(&rec);
        }
        let body = compress(codec, &body);
        let (pid, control) = producer.unwrap_or((-1, false));
        let mut attributes = codec;
        if producer.is_some() {
            attributes |= 0x10;
        }
        if control {
            attributes |= 0x20;
        }
        let mut after_crc = Vec::new();
        after_crc.extend_from_slice(&attributes.to_be_bytes());
        after_crc.extend_from_slice(&(records.len().max(1) as i32 - 1).to_be_bytes());
        after_crc.extend_from_slice(&base_timestamp.to_be_bytes());
        after_crc.extend_from_slice(&base_timestamp.to_be_bytes());
        after_crc.extend_from_slice(&pid.to_be_bytes());
        after_crc.extend_from_slice(&0i16.to_be_bytes());
        after_crc.extend_from_slice(&0i32.to_be_bytes());
        after_crc.extend_from_slice(&(records.len() as i32).to_be_bytes());
        after_crc.extend_from_slice(&body);
        let mut out = Vec::new();
        out.extend_from_slice(&base_offset.to_be_bytes());
        out.extend_from_slice(&((after_crc.len() + 9) as i32).to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.push(2);
        out.extend_from_slice(&crc32c::crc32c(&after_crc).to_be_bytes());
        out.extend_from_slice(&after_crc);
        out
    }

    /// A control batch (commit or abort marker) of `producer_id` at `offset`.
    pub(crate) fn control(offset: i64, producer_id: i64, commit: bool) -> Vec<u8> {
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&i16::from(commit).to_be_bytes());
        let rec = Rec {
            key: Some(key),
            value: Some(vec![0, 0, 0, 0, 0, 0]),
            headers: vec![],
            timestamp_delta: 0,
        };
        batch(offset, 0, &[rec], 0, Some((producer_id, true)))
    }

    fn compress(codec: i16, body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match codec {
            0 => body.to_vec(),
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            }
            2 => {
                let block = snap::raw::Encoder::new().compress_vec(body).unwrap();
                let mut out = XERIAL_MAGIC.to_vec();
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
                out
            }
            3 => {
                let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
                e.write_all(body).unwrap();
                let (out, r) = e.finish();
                r.unwrap();
                out
            }
            4 => zstd::stream::encode_all(body, 1).unwrap(),
            _ => unreachable!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{Rec, batch, control};
    use super::*;
    use proptest::prelude::*;

    const OPTS: Options = Options {
        check_crc: true,
        read_committed: false,
    };

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    fn rec(value: &str) -> Rec {
        Rec {
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: vec![],
            timestamp_delta: 1,
        }
    }

    #[test]
    fn every_codec_round_trips_with_headers_in_order_and_duplicates() {
        let records = vec![
            Rec {
                key: None,
                value: Some(b"first".to_vec()),
                headers: vec![
                    ("a".into(), Some(b"1".to_vec())),
                    ("a".into(), Some(b"2".to_vec())),
                    ("b".into(), None),
                    ("a".into(), Some(vec![])),
                ],
                timestamp_delta: 0,
            },
            Rec {
                key: Some(vec![]),
                value: None,
                headers: vec![],
                timestamp_delta: 7,
            },
        ];
        for codec in 0..=4 {
            let data = Bytes::from(batch(100, 1_000, &records, codec, None));
            let d = decode(&topic(), 3, &data, 100, &[], OPTS);
            assert_eq!(d.corrupt, None, "codec {codec}");
            assert_eq!(d.next_offset, Some(102));
            assert_eq!(d.records.len(), 2);
            let r = &d.records[0];
            assert_eq!((r.partition, r.offset, r.timestamp), (3, 100, 1_000));
            assert_eq!(r.key, None);
            assert_eq!(r.value.as_deref(), Some(&b"first"[..]));
            let hs: Vec<_> = r
                .headers
                .iter()
                .map(|h| (h.key.as_str(), h.value.as_deref()))
                .collect();
            assert_eq!(
                hs,
                vec![
                    ("a", Some(&b"1"[..])),
                    ("a", Some(&b"2"[..])),
                    ("b", None),
                    ("a", Some(&b""[..]))
                ]
            );
            let r = &d.records[1];
            assert_eq!((r.offset, r.timestamp), (101, 1_007));
            assert_eq!(r.key.as_deref(), Some(&b""[..]));
            assert_eq!(r.value, None);
        }
    }

    #[test]
    fn records_before_the_fetch_offset_are_left_out_and_partial_tails_wait() {
        let mut data = batch(10, 0, &[rec("a"), rec("b"), rec("c")], 4, None);
        let second = batch(13, 0, &[rec("d")], 0, None);
        data.extend_from_slice(&second[..second.len() - 3]);
        let d = decode(&topic(), 0, &Bytes::from(data), 12, &[], OPTS);
        assert_eq!(d.corrupt, None);
        assert_eq!(
            d.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![12]
        );
        assert_eq!(d.next_offset, Some(13));
    }

    #[test]
    fn a_partial_batch_alone_is_reported() {
        let data = batch(5, 0, &[rec("a")], 0, None);
        let d = decode(
            &topic(),
            0,
            &Bytes::copy_from_slice(&data[..30]),
            5,
            &[],
            OPTS,
        );
        let c = d.corrupt.unwrap();
        assert_eq!(c.offset, 5);
        assert!(
            c.message.contains("max.partition.fetch.bytes"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_crc_mismatch_names_the_offsets_and_where_to_resume() {
        let mut data = batch(0, 0, &[rec("ok")], 0, None);
        data.extend(batch(1, 0, &[rec("bad"), rec("bad2")], 0, None));
        let n = data.len();
        data[n - 2] ^= 0xff;
        let d = decode(&topic(), 0, &Bytes::from(data), 0, &[], OPTS);
        assert_eq!(d.records.len(), 1);
        let c = d.corrupt.unwrap();
        assert_eq!((c.offset, c.resume_at), (1, Some(3)));
        assert!(c.message.contains("CRC32C"), "{}", c.message);
    }

    #[test]
    fn aborted_transactions_and_control_batches_are_filtered_under_read_committed() {
        let pid_a = 7;
        let pid_b = 8;
        let mut data = Vec::new();
        data.extend(batch(
            0,
            0,
            &[rec("a0"), rec("a1")],
            0,
            Some((pid_a, false)),
        ));
        data.extend(batch(2, 0, &[rec("b0")], 0, Some((pid_b, false))));
        data.extend(control(3, pid_a, false)); // abort A
        data.extend(control(4, pid_b, true)); // commit B
        data.extend(batch(5, 0, &[rec("a2")], 0, Some((pid_a, false))));
        data.extend(control(6, pid_a, true)); // commit A's second transaction
        data.extend(batch(7, 0, &[rec("plain")], 0, None));
        let data = Bytes::from(data);
        let aborted = [Aborted {
            producer_id: pid_a,
            first_offset: 0,
        }];
        let committed = decode(
            &topic(),
            0,
            &data,
            0,
            &aborted,
            Options {
                check_crc: true,
                read_committed: true,
            },
        );
        let values: Vec<_> = committed
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
            .collect();
        assert_eq!(values, vec!["b0", "a2", "plain"]);
        assert_eq!(committed.next_offset, Some(8));
        let all = decode(&topic(), 0, &data, 0, &aborted, OPTS);
        assert_eq!(all.records.len(), 5, "read_uncommitted skips only markers");
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let zeros = vec![0u8; MAX_DECOMPRESSED + 1024];
        let packed = zstd::stream::encode_all(&zeros[..], 3).unwrap();
        assert!(decompress(4, &packed).unwrap_err().contains("expands past"));
    }

    fn arb_rec() -> impl Strategy<Value = Rec> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
            proptest::collection::vec(
                (
                    "[a-z]{0,4}",
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                ),
                0..4,
            ),
            -1000i64..1000,
        )
            .prop_map(|(key, value, headers, timestamp_delta)| Rec {
                key,
                value,
                headers,
                timestamp_delta,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes decode to records or a `Corrupt`, never a panic or a huge allocation.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), crc in any::<bool>()) {
            let opts = Options { check_crc: crc, read_committed: true };
            let aborted = [Aborted { producer_id: 1, first_offset: 0 }];
            let _ = decode(&topic(), 0, &Bytes::from(bytes), 0, &aborted, opts);
        }

        /// A valid header with arbitrary content after it (CRC off, so the record parser is reached).
        #[test]
        fn arbitrary_records_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300), codec in 0i16..5, count in any::<i32>()) {
            let mut data = batch(0, 0, &[], 0, None);
            data.truncate(HEADER);
            data[21..23].copy_from_slice(&codec.to_be_bytes());
            data[57..61].copy_from_slice(&count.to_be_bytes());
            data.extend_from_slice(&tail);
            let len = (data.len() - LOG_OVERHEAD) as i32;
            data[8..12].copy_from_slice(&len.to_be_bytes());
            let opts = Options { check_crc: false, read_committed: false };
            let _ = decode(&topic(), 0, &Bytes::from(data), 0, &[], opts);
        }

        /// Whatever a producer writes comes back unchanged, in every codec.
        #[test]
        fn encoded_batches_round_trip(recs in proptest::collection::vec(arb_rec(), 1..6), codec in 0i16..5, base in 0i64..1_000_000) {
            let data = Bytes::from(batch(base, 1_700_000_000_000, &recs, codec, None));
            let d = decode(&topic(), 1, &data, base, &[], OPTS);
            prop_assert_eq!(d.corrupt, None);
            prop_assert_eq!(d.records.len(), recs.len());
            for (i, (got, want)) in d.records.iter().zip(&recs).enumerate() {
                prop_assert_eq!(got.offset, base + i as i64);
                prop_assert_eq!(got.timestamp, 1_700_000_000_000 + want.timestamp_delta);
                prop_assert_eq!(got.key.as_deref(), want.key.as_deref());
                prop_assert_eq!(got.value.as_deref(), want.value.as_deref());
                let hs: Vec<(String, Option<Vec<u8>>)> = got.headers.iter().map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec()))).collect();
                prop_assert_eq!(&hs, &want.headers);
            }
        }
    }
}
