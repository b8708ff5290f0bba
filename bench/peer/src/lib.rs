//! The Rust peers of `bench/run.py` (bench/README.md's peer contract): one workload per process,
//! flags in, one JSON line out. `gregor-peer` runs gregor's Producer and Consumer,
//! `rdkafka-peer` rust-rdkafka (librdkafka) with the same settings.
//!
//! Modes: `produce` (keyed records, acks=all, linger, batches up to `--batch-bytes`),
//! `consume` (a group of one from the earliest offset, `seconds` from the first record) and
//! `latency` (`--rate` records per second for `--seconds`, each value starting with its send
//! time in nanoseconds since the epoch, big-endian; p50/p99/p99.9 of send-to-receive).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;

pub mod gregor;
pub mod rdkafka_peer;

/// Distinct keys of every produced record.
pub const KEYS: usize = 10_000;

/// Fetch settings shared by both consumers.
pub const FETCH: &[(&str, &str)] = &[
    ("fetch.min.bytes", "1"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
];

/// The value of flag `name`, if given.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One workload, from the command line.
#[derive(Debug, Clone)]
pub struct Workload {
    /// produce, consume or latency.
    pub mode: String,
    /// bootstrap.servers.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Records to produce/consume.
    pub records: usize,
    /// Value size in bytes.
    pub size: usize,
    /// none or lz4.
    pub compression: String,
    /// Consumer group.
    pub group: String,
    /// Records per second (latency).
    pub rate: usize,
    /// Duration (latency).
    pub seconds: u64,
    /// linger.ms.
    pub linger_ms: String,
    /// batch.size (and max.request.size).
    pub batch_bytes: String,
}

impl Workload {
    /// Parses the contract's flags.
    pub fn from_args() -> Result<Self> {
        let a: Vec<String> = std::env::args().skip(1).collect();
        let get = |n: &str, d: &str| arg(&a, n).unwrap_or_else(|| d.to_string());
        Ok(Self {
            mode: arg(&a, "--mode").context("--mode")?,
            bootstrap: arg(&a, "--bootstrap").context("--bootstrap")?,
            topic: arg(&a, "--topic").context("--topic")?,
            records: get("--records", "0").parse()?,
            size: get("--size", "100").parse()?,
            compression: get("--compression", "none"),
            group: get("--group", &format!("bench-peer-{}", now_ns())),
            rate: get("--rate", "10000").parse()?,
            seconds: get("--seconds", "60").parse()?,
            linger_ms: get("--linger-ms", "5"),
            batch_bytes: get("--batch-bytes", "1048576"),
        })
    }
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `n` values of `size` bytes, text-like, from a fixed seed: every client sends the same bytes.
pub fn values(n: usize, size: usize) -> Vec<Bytes> {
    const WORDS: &[&str] = &[
        "order", "user", "amount", "status", "created", "paid", "shipped", "item", "price",
        "quantity", "product", "12.99", "true", "false", "null", "id", "event", "source",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let distinct = n.clamp(1, 1024);
    (0..distinct)
        .map(|_| {
            let mut v = Vec::with_capacity(size + 16);
            while v.len() < size {
                let r = next();
                if r % 3 == 0 {
                    v.extend_from_slice(format!("{:x}", r >> 40).as_bytes());
                } else {
                    v.extend_from_slice(WORDS[(r as usize / 3) % WORDS.len()].as_bytes());
                }
                v.push(if r % 5 == 0 { b',' } else { b' ' });
            }
            v.truncate(size);
            Bytes::from(v)
        })
        .collect()
}

/// The record keys, `user-0` .. `user-9999`.
pub fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("user-{i}")))
        .collect()
}

/// A latency value: `size` bytes (at least 8) starting with the send time.
pub fn stamped(size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size.max(8)];
    v[..8].copy_from_slice(&now_ns().to_be_bytes());
    v
}

/// Send-to-receive milliseconds of a stamped value, if it is one.
pub fn latency_ms(value: &[u8]) -> Option<f64> {
    let sent = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some(now_ns().saturating_sub(sent) as f64 / 1e6)
}

/// What a workload measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records acknowledged or received.
    pub records: u64,
    /// Value bytes.
    pub bytes: u64,
    /// Wall time of the workload.
    pub seconds: f64,
    /// Failed deliveries.
    pub errors: u64,
    /// Latency samples in ms (latency mode).
    pub samples: Vec<f64>,
}

/// Counters shared between a delivery callback and the workload.
#[derive(Debug, Default)]
pub struct Counters {
    /// Acknowledged records.
    pub acked: AtomicU64,
    /// Failed records.
    pub errors: AtomicU64,
}

impl Counters {
    /// New shared counters.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// Counts one delivery.
    pub fn count(&self, ok: bool) {
        if ok {
            self.acked.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The instant record `i` of a paced run is due.
pub fn due(start: Instant, rate: usize, i: usize) -> Instant {
    start + Duration::from_nanos((i as u64).saturating_mul(1_000_000_000) / rate.max(1) as u64)
}

/// Prints the contract's JSON line.
pub fn report(client: &str, w: &Workload, o: Outcome) -> Result<()> {
    let mut line = serde_json::json!({
        "client": client,
        "mode": w.mode,
        "records": o.records,
        "bytes": o.bytes,
        "seconds": o.seconds,
        "errors": o.errors,
        "compression": w.compression,
    });
    if w.mode == "latency" {
        let mut s = o.samples;
        if s.is_empty() {
            bail!("no record received");
        }
        s.sort_by(f64::total_cmp);
        let q = |p: f64| s[(p * (s.len() - 1) as f64) as usize];
        line["p50_ms"] = q(0.50).into();
        line["p99_ms"] = q(0.99).into();
        line["p999_ms"] = q(0.999).into();
    }
    println!("{line}");
    Ok(())
}
