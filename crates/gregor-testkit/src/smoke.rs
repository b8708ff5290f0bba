//! A produce-and-read-back round trip through rskafka: the broker check behind `just demo` and
//! the foundation tests. Records are placed by index (`i % partitions`); Java-compatible key
//! placement is gregor-partition's job, not this check's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::BackoffConfig;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::ClientBuilder;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

use crate::error::{Error, Result};

/// Per-partition outcome of a round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// Partition id.
    pub partition: i32,
    /// Records produced to it and read back.
    pub records: usize,
    /// Offset of the first record written in this run.
    pub first_offset: i64,
    /// Offset of the last record written in this run.
    pub last_offset: i64,
    /// High watermark after the run.
    pub high_watermark: i64,
}

/// What a round trip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrip {
    /// Topic used.
    pub topic: String,
    /// One entry per partition, by id.
    pub partitions: Vec<PartitionReport>,
    /// Whether the topic was created by this run.
    pub created: bool,
    /// Time spent producing.
    pub produce_time: Duration,
    /// Time spent reading back.
    pub fetch_time: Duration,
}

impl RoundTrip {
    /// Records written and verified in total.
    pub fn total(&self) -> usize {
        self.partitions.iter().map(|p| p.records).sum()
    }
}

/// The key of record `i`: 100 users, so keys repeat as they do in an order stream.
pub fn key_of(i: usize) -> String {
    format!("user-{}", i % 100)
}

/// The value of record `i`.
pub fn value_of(topic: &str, i: usize) -> String {
    format!("{{\"seq\":{i},\"topic\":\"{topic}\"}}")
}

fn kafka_err(bootstrap: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Kafka {
        bootstrap: bootstrap.to_owned(),
        detail: format!("{what}: {e}"),
    }
}

/// Creates `topic` with `partitions` partitions (an existing topic with that many is reused),
/// produces `count` keyed records, reads every one back from the offsets the broker returned and
/// checks key, value, header and offset. Any difference is an error naming partition and offset.
pub async fn round_trip(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i16,
    count: usize,
) -> Result<RoundTrip> {
    let client = ClientBuilder::new(bootstrap.split(',').map(str::to_owned).collect())
        .client_id(Arc::from("gregor-smoke"))
        .backoff_config(BackoffConfig {
            deadline: Some(Duration::from_secs(30)),
            ..BackoffConfig::default()
        })
        .build()
        .await
        .map_err(|e| kafka_err(bootstrap, "connect", e))?;
    let created = match client
        .controller_client()
        .map_err(|e| kafka_err(bootstrap, "controller", e))?
        .create_topic(topic, partitions, replication, 30_000)
        .await
    {
        Ok(()) => true,
        Err(ClientError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => false,
        Err(e) => return Err(kafka_err(bootstrap, &format!("create topic {topic}"), e)),
    };
    let existing = client
        .list_topics()
        .await
        .map_err(|e| kafka_err(bootstrap, "list topics", e))?
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.len())
        .unwrap_or(0);
    if existing != usize::try_from(partitions).unwrap_or(0) {
        return Err(kafka_err(
            bootstrap,
            &format!("topic {topic}"),
            format!("has {existing} partitions, expected {partitions}"),
        ));
    }

    let n = usize::try_from(partitions).unwrap_or(1).max(1);
    let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..count {
        by_partition[i % n].push(i);
    }
    let timestamp = Utc
        .timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .unwrap_or_else(Utc::now);
    let record = |i: usize| Record {
        key: Some(key_of(i).into_bytes()),
        value: Some(value_of(topic, i).into_bytes()),
        headers: BTreeMap::from([("seq".to_owned(), i.to_string().into_bytes())]),
        timestamp,
    };

    let mut clients = Vec::with_capacity(n);
    for p in 0..partitions {
        clients.push(
            client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| kafka_err(bootstrap, &format!("partition {topic}/{p}"), e))?,
        );
    }

    let started = Instant::now();
    let mut offsets: Vec<Vec<i64>> = Vec::with_capacity(n);
    for (p, indexes) in by_partition.iter().enumerate() {
        let mut got = Vec::with_capacity(indexes.len());
        // Batches of 200 records keep each request well under the broker's size limit.
        for chunk in indexes.chunks(200) {
            let records = chunk.iter().map(|&i| record(i)).collect();
            got.extend(
                clients[p]
                    .produce(records, Compression::NoCompression)
                    .await
                    .map_err(|e| kafka_err(bootstrap, &format!("produce to {topic}/{p}"), e))?,
            );
        }
        offsets.push(got);
    }
    let produce_time = started.elapsed();

    let started = Instant::now();
    let mut reports = Vec::with_capacity(n);
    for (p, indexes) in by_partition.iter().enumerate() {
        let partition = i32::try_from(p).unwrap_or(i32::MAX);
        let expected: BTreeMap<i64, usize> = offsets[p]
            .iter()
            .copied()
            .zip(indexes.iter().copied())
            .collect();
        let mut seen = 0usize;
        let mut high_watermark = 0;
        let (Some(&first), Some(&last)) = (offsets[p].first(), offsets[p].last()) else {
            reports.push(PartitionReport {
                partition,
                records: 0,
                first_offset: -1,
                last_offset: -1,
                high_watermark: 0,
            });
            continue;
        };
        let mut next = first;
        while next <= last {
            let (records, hw) = clients[p]
                .fetch_records(next, 1..1_048_576, 1_000)
                .await
                .map_err(|e| {
                    kafka_err(bootstrap, &format!("fetch {topic}/{p} at offset {next}"), e)
                })?;
            high_watermark = hw;
            if records.is_empty() {
                return Err(kafka_err(
                    bootstrap,
                    &format!("fetch {topic}/{p} at offset {next}"),
                    format!("no records below the high watermark {hw}"),
                ));
            }
            for r in records {
                next = next.max(r.offset + 1);
                let Some(&i) = expected.get(&r.offset) else {
                    continue;
                };
                let check = |what: &str, got: Option<&[u8]>, want: &[u8]| {
                    if got == Some(want) {
                        Ok(())
                    } else {
                        Err(kafka_err(
                            bootstrap,
                            &format!("{topic}/{p} offset {}", r.offset),
                            format!(
                                "{what} is {:?}, wrote {:?}",
                                got.map(String::from_utf8_lossy),
                                String::from_utf8_lossy(want)
                            ),
                        ))
                    }
                };
                check("key", r.record.key.as_deref(), key_of(i).as_bytes())?;
                check(
                    "value",
                    r.record.value.as_deref(),
                    value_of(topic, i).as_bytes(),
                )?;
                check(
                    "header seq",
                    r.record.headers.get("seq").map(Vec::as_slice),
                    i.to_string().as_bytes(),
                )?;
                seen += 1;
            }
        }
        if seen != indexes.len() {
            return Err(kafka_err(
                bootstrap,
                &format!("{topic}/{p}"),
                format!("read back {seen} of {} records", indexes.len()),
            ));
        }
        reports.push(PartitionReport {
            partition,
            records: seen,
            first_offset: first,
            last_offset: last,
            high_watermark,
        });
    }
    Ok(RoundTrip {
        topic: topic.to_owned(),
        partitions: reports,
        created,
        produce_time,
        fetch_time: started.elapsed(),
    })
}
