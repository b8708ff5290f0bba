//! Structured generators: valid encodings built from random values, the starting points the
//! havoc mutations then damage.

use std::io::Write;

use chrono::{DateTime, Utc};
use gregor_event::{Event, Item, Money, OrderEvent, OrderStatus};

use crate::rng::Rng;

/// A short string: ASCII mostly, sometimes multi-byte UTF-8 or empty.
pub fn text(rng: &mut Rng) -> String {
    const ALPHABET: &[&str] = &[
        "a",
        "b",
        "o",
        "-",
        "1",
        "9",
        ".",
        "_",
        " ",
        "é",
        "日",
        "\u{1f600}",
        "\"",
        "\\",
        "\u{0}",
    ];
    let n = rng.len(24);
    (0..n).map(|_| *rng.pick(ALPHABET)).collect()
}

/// A timestamp, microsecond precision, across the representable years.
pub fn time(rng: &mut Rng) -> DateTime<Utc> {
    let micros = match rng.below(4) {
        0 => 0,
        1 => 1_767_322_245_678_901,
        2 => rng.next_u64() as i64 % 253_402_300_799_000_000,
        _ => -(rng.next_u64() as i64 % 62_135_596_800_000_000),
    };
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Money: small, boundary or random cents in range.
pub fn money(rng: &mut Rng) -> Money {
    let cents = match rng.below(4) {
        0 => 0,
        1 => gregor_event::MAX_CENTS,
        2 => -gregor_event::MAX_CENTS,
        _ => rng.next_u64() as i64 % gregor_event::MAX_CENTS,
    };
    Money::from_cents(cents).unwrap_or(Money::ZERO)
}

/// A random order (valid values; amounts need not add up).
pub fn order(rng: &mut Rng) -> OrderEvent {
    let n = rng.len(6);
    OrderEvent {
        order_id: text(rng),
        user_id: text(rng),
        status: *rng.pick(&OrderStatus::ALL),
        amount: money(rng),
        items: (0..n)
            .map(|_| Item {
                product_id: text(rng),
                quantity: rng.next_u64() as u32 >> rng.below(32),
                price: money(rng),
            })
            .collect(),
        created_at: time(rng),
    }
}

/// A JSON value of bounded depth.
pub fn json(rng: &mut Rng, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.below(if depth == 0 { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => serde_json::json!(rng.int()),
        3 => Value::String(text(rng)),
        4 => Value::Array((0..rng.len(4)).map(|_| json(rng, depth - 1)).collect()),
        _ => Value::Object(
            (0..rng.len(4))
                .map(|_| (text(rng), json(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// An envelope: an order's data under an order type, or any JSON under any type.
pub fn event(rng: &mut Rng) -> Event {
    let mut e = if rng.one_in(2) {
        let o = order(rng);
        Event::new(
            o.status.event_type(),
            text(rng),
            serde_json::to_value(&o).unwrap_or_default(),
        )
    } else {
        Event::new(text(rng), text(rng), json(rng, 3))
    };
    e.timestamp = gregor_event::time::truncate_micros(time(rng));
    for _ in 0..rng.len(3) {
        let key: String = if rng.one_in(2) {
            "traceparent".into()
        } else {
            text(rng)
        };
        e.metadata.insert(key, text(rng));
    }
    e
}

fn uvarint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(v: i64, out: &mut Vec<u8>) {
    uvarint(((v << 1) ^ (v >> 63)) as u64, out);
}

fn nullable(b: &Option<Vec<u8>>, out: &mut Vec<u8>) {
    match b {
        None => varint(-1, out),
        Some(b) => {
            varint(b.len() as i64, out);
            out.extend_from_slice(b);
        }
    }
}

/// One record of a batch.
#[derive(Debug, Clone)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub timestamp_delta: i64,
    pub offset_delta: i64,
}

/// Compresses a batch body with Kafka codec `codec` (1 gzip, 2 snappy xerial, 3 lz4, 4 zstd).
pub fn compress(codec: i16, body: &[u8], raw_snappy: bool) -> Vec<u8> {
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(body);
            e.finish().unwrap_or_default()
        }
        2 => {
            let block = snap::raw::Encoder::new()
                .compress_vec(body)
                .unwrap_or_default();
            if raw_snappy {
                return block;
            }
            let mut out = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&(block.len() as u32).to_be_bytes());
            out.extend_from_slice(&block);
            out
        }
        3 => {
            let mut e = match lz4::EncoderBuilder::new().build(Vec::new()) {
                Ok(e) => e,
                Err(_) => return Vec::new(),
            };
            let _ = e.write_all(body);
            let (out, _) = e.finish();
            out
        }
        4 => zstd::bulk::compress(body, 1).unwrap_or_default(),
        _ => body.to_vec(),
    }
}

/// A magic v2 record batch, CRC32C filled in.
pub fn batch(
    base_offset: i64,
    records: &[Rec],
    codec: i16,
    producer: Option<(i64, bool)>,
    log_append: bool,
    raw_snappy: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    for r in records {
        let mut rec = vec![0u8];
        varint(r.timestamp_delta, &mut rec);
        varint(r.offset_delta, &mut rec);
        nullable(&r.key, &mut rec);
        nullable(&r.value, &mut rec);
        varint(r.headers.len() as i64, &mut rec);
        for (k, v) in &r.headers {
            nullable(&Some(k.clone()), &mut rec);
            nullable(v, &mut rec);
        }
        varint(rec.len() as i64, &mut body);
        body.extend_from_slice(&rec);
    }
    let body = compress(codec, &body, raw_snappy);
    let (pid, control) = producer.unwrap_or((-1, false));
    let mut attributes = codec;
    if log_append {
        attributes |= 0x08;
    }
    if producer.is_some() {
        attributes |= 0x10;
    }
    if control {
        attributes |= 0x20;
    }
    let last_delta = records.iter().map(|r| r.offset_delta).max().unwrap_or(0);
    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&attributes.to_be_bytes());
    after_crc.extend_from_slice(&(last_delta as i32).to_be_bytes());
    after_crc.extend_from_slice(&1_767_322_245_678i64.to_be_bytes());
    after_crc.extend_from_slice(&1_767_322_245_999i64.to_be_bytes());
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

/// Recomputes the CRC32C of every complete batch in `data` (so mutations reach past it).
pub fn fix_crcs(data: &mut [u8]) {
    let mut pos = 0usize;
    while data.len().saturating_sub(pos) >= 61 {
        let len =
            i32::from_be_bytes([data[pos + 8], data[pos + 9], data[pos + 10], data[pos + 11]]);
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let end = pos + 12 + len;
        if len < 49 || end > data.len() {
            return;
        }
        let crc = crc32c::crc32c(&data[pos + 21..end]);
        data[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// A random record: keys, values and headers of random sizes, sometimes null.
pub fn record(rng: &mut Rng, i: i64) -> Rec {
    let blob = |rng: &mut Rng| {
        if rng.one_in(6) {
            None
        } else {
            let n = rng.len(300);
            Some(rng.bytes(n))
        }
    };
    Rec {
        key: blob(rng),
        value: blob(rng),
        headers: (0..rng.len(4))
            .map(|_| (text(rng).into_bytes(), blob(rng)))
            .collect(),
        timestamp_delta: if rng.one_in(8) { rng.int() } else { i },
        offset_delta: if rng.one_in(16) { rng.int() } else { i },
    }
}

/// A control batch (commit or abort marker).
pub fn control(offset: i64, producer_id: i64, commit: bool) -> Vec<u8> {
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let rec = Rec {
        key: Some(key),
        value: Some(vec![0, 0, 0, 0, 0, 0]),
        headers: vec![],
        timestamp_delta: 0,
        offset_delta: 0,
    };
    batch(offset, &[rec], 0, Some((producer_id, true)), false, false)
}

/// The records bytes of one fetched partition: a few batches (any codec, transactional or not,
/// control markers) from `base`.
pub fn records_bytes(rng: &mut Rng, base: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = base;
    for _ in 0..1 + rng.len(3) {
        if rng.one_in(6) {
            out.extend(control(offset, rng.below(4) as i64, rng.one_in(2)));
            offset += 1;
            continue;
        }
        let n = 1 + rng.len(8);
        let recs: Vec<Rec> = (0..n).map(|i| record(rng, i as i64)).collect();
        let producer = if rng.one_in(3) {
            Some((rng.below(4) as i64, false))
        } else {
            None
        };
        out.extend(batch(
            offset,
            &recs,
            rng.below(5) as i16,
            producer,
            rng.one_in(4),
            rng.one_in(4),
        ));
        offset += n as i64;
    }
    if rng.one_in(4) {
        // A partial batch at the end, as a broker cuts at the size limit.
        let extra = batch(offset, &[record(rng, 0)], 0, None, false, false);
        let cut = rng.below(extra.len());
        out.extend_from_slice(&extra[..cut]);
    }
    out
}
