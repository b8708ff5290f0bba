//! The producer's settings, read once from a checked [`ClientConfig`].

use std::time::Duration;

use rskafka::client::partition::Compression;

use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// Bytes a v2 record batch adds around its records (61) plus a produce request's own framing
/// for one topic and partition, without the topic name.
pub(crate) const BATCH_OVERHEAD: usize = 61 + 64;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) linger: Duration,
    pub(crate) batch_bytes: usize,
    pub(crate) batch_records: usize,
    pub(crate) max_request: usize,
    pub(crate) compression: Compression,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) in_flight: usize,
    pub(crate) buffer_bytes: usize,
    pub(crate) buffer_records: usize,
    pub(crate) max_block: Duration,
    pub(crate) metadata_max_age: Duration,
    pub(crate) partitioner: String,
}

fn usize_of(config: &ClientConfig, key: &str) -> usize {
    usize::try_from(config.int(key)).unwrap_or(usize::MAX)
}

impl Settings {
    pub(crate) fn from_config(config: &ClientConfig) -> Result<Settings> {
        let compression = match config.get("compression.type").unwrap_or("none") {
            "none" => Compression::NoCompression,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            other => {
                return Err(Error::config(
                    "compression.type",
                    format!("{other:?} is not one of none, gzip, snappy, lz4, zstd"),
                ));
            }
        };
        Ok(Settings {
            linger: config.duration_ms("linger.ms"),
            batch_bytes: usize_of(config, "batch.size"),
            batch_records: usize_of(config, "batch.num.messages"),
            max_request: usize_of(config, "max.request.size"),
            compression,
            retries: u32::try_from(config.int("retries")).unwrap_or(u32::MAX),
            backoff: config.duration_ms("retry.backoff.ms"),
            backoff_max: config.duration_ms("retry.backoff.max.ms"),
            delivery_timeout: config.duration_ms("delivery.timeout.ms"),
            request_timeout: config.request_timeout(),
            in_flight: usize_of(config, "max.in.flight.requests.per.connection").max(1),
            buffer_bytes: usize_of(config, "buffer.memory"),
            buffer_records: usize_of(config, "queue.buffering.max.messages"),
            max_block: config.duration_ms("max.block.ms"),
            metadata_max_age: config.duration_ms("metadata.max.age.ms"),
            partitioner: config.get("partitioner").unwrap_or("default").to_owned(),
        })
    }
}
