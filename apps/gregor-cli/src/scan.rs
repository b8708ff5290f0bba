//! Reading a topic without a group: every partition (or the chosen ones) assigned explicitly,
//! positioned at a start, read up to the end offsets seen when the scan opened (or for ever
//! with `follow`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use gregor_client::{Admin, ClientConfig, Consumer, OffsetSpec, Record, TopicPartition};

use crate::{CliResult, Failure};

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The log start of each partition.
    Beginning,
    /// The end (only records produced from now on).
    End,
    /// The first record at or after this time (ms since the epoch); the end where there is none.
    Timestamp(i64),
    /// This offset in each partition.
    Offset(i64),
}

impl Start {
    /// `beginning`, `end`, an RFC 3339 time (`2026-11-28T10:00:00Z`), or milliseconds since
    /// the epoch.
    pub(crate) fn parse(s: &str) -> Result<Start, String> {
        match s {
            "beginning" | "earliest" => Ok(Start::Beginning),
            "end" | "latest" => Ok(Start::End),
            _ => parse_time(s).map(Start::Timestamp),
        }
    }
}

/// An RFC 3339 time or milliseconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!(
                "{s:?} is not beginning, end, an RFC 3339 time (2026-11-28T10:00:00Z) or epoch milliseconds: {e}"
            )
        })
}

/// The partitions of `topic` (all, or those in `only`), checked against the topic.
pub(crate) async fn partitions(
    admin: &Admin,
    topic: &str,
    only: &[i32],
) -> CliResult<Vec<TopicPartition>> {
    let meta = admin.describe_topics(&[topic]).await?;
    let info = meta
        .topic(topic)
        .filter(|t| t.error.is_none() && !t.partitions.is_empty())
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "topic {topic} does not exist: check the name with `gregor topics list`"
            ))
        })?;
    let all: Vec<i32> = info.partitions.iter().map(|p| p.id).collect();
    for p in only {
        if !all.contains(p) {
            return Err(Failure::usage(anyhow!(
                "topic {topic} has no partition {p} (it has {})",
                all.len()
            )));
        }
    }
    Ok(all
        .into_iter()
        .filter(|p| only.is_empty() || only.contains(p))
        .map(|p| TopicPartition::new(topic, p))
        .collect())
}

/// End offsets (high watermarks) of `partitions`.
pub(crate) async fn end_offsets(
    admin: &Admin,
    partitions: &[TopicPartition],
) -> CliResult<BTreeMap<TopicPartition, i64>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let req: Vec<(&str, i32, OffsetSpec)> = partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition, OffsetSpec::Latest))
        .collect();
    Ok(admin
        .list_offsets(&req, false)
        .await?
        .into_iter()
        .map(|l| {
            (
                TopicPartition::new(l.topic, l.partition),
                l.offset.unwrap_or(0),
            )
        })
        .collect())
}

/// A group-less read of one topic.
pub(crate) struct Scan {
    consumer: Consumer,
    ends: BTreeMap<TopicPartition, i64>,
    follow: bool,
}

impl Scan {
    /// Assigns `partitions` (all when empty) of `topic`, seeks them to `start` and notes where
    /// they end now.
    pub(crate) async fn open(
        config: &ClientConfig,
        topic: &str,
        only: &[i32],
        start: Start,
        follow: bool,
    ) -> CliResult<Scan> {
        let admin = Admin::connect(config).await?;
        let parts = partitions(&admin, topic, only).await?;
        let ends = end_offsets(&admin, &parts).await?;
        let mut consumer = Consumer::connect(config).await?;
        consumer.assign(&parts)?;
        match start {
            Start::Beginning => consumer.seek_to_beginning(&parts).await?,
            Start::End => consumer.seek_to_end(&parts).await?,
            Start::Timestamp(ms) => consumer.seek_to_timestamp(&parts, ms).await?,
            Start::Offset(o) => {
                for p in &parts {
                    consumer.seek(p, o)?;
                }
            }
        }
        Ok(Scan {
            consumer,
            ends,
            follow,
        })
    }

    /// Whether every partition was read up to the end it had when the scan opened.
    pub(crate) fn at_end(&self) -> bool {
        self.ends
            .iter()
            .all(|(p, end)| self.consumer.position(p).is_some_and(|pos| pos >= *end))
    }

    /// The next records; `None` once at the end (never when following).
    pub(crate) async fn next(&mut self) -> CliResult<Option<Vec<Record>>> {
        loop {
            if !self.follow && self.at_end() {
                return Ok(None);
            }
            let mut batch = self.consumer.poll(Duration::from_millis(500)).await?;
            if !self.follow {
                // Records written after the scan opened are not part of it.
                batch.retain(|r| {
                    let p = TopicPartition::new(r.topic.as_ref(), r.partition);
                    self.ends.get(&p).is_some_and(|end| r.offset < *end)
                });
            }
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
            if self.follow {
                return Ok(Some(batch));
            }
        }
    }

    /// Reads everything up to the end.
    pub(crate) async fn collect(mut self) -> CliResult<Vec<Record>> {
        let mut out = Vec::new();
        while let Some(batch) = self.next().await? {
            out.extend(batch);
        }
        self.consumer.close().await?;
        Ok(out)
    }

    /// Closes the consumer.
    pub(crate) async fn close(self) -> CliResult {
        self.consumer.close().await?;
        Ok(())
    }
}
