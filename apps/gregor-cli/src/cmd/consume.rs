//! `gregor consume` and `gregor tail`: read records, decode them, filter, print.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use gregor_client::{Admin, Consumer, Record, TopicPartition};
use gregor_codec::Location;
use serde_json::{Value, json};

use super::client_config;
use crate::codec::{CodecKind, Decoder, RegistryArgs, text_or_base64};
use crate::output::Output;
use crate::scan::{self, Scan, Start};
use crate::{CliResult, Failure, Global};

/// Read records from a topic and print them: pretty on a terminal, JSON lines with --json
/// (the shape `gregor produce --format json` reads back).
///
/// Without --group every partition (or those of --partition) is assigned and nothing is
/// committed; with --group the records printed are committed for the group, and --from applies
/// only to partitions where the group has no committed offset. Without --follow the command stops
/// at the end offsets the partitions had when it started.
#[derive(Debug, clap::Args)]
pub(crate) struct Consume {
    /// Topic to read.
    topic: String,
    /// Where to start: beginning, end, an RFC 3339 time (2026-11-28T10:00:00Z) or epoch
    /// milliseconds. Default: beginning (tail: end).
    #[arg(long, value_name = "WHERE")]
    from: Option<String>,
    /// Start at this offset in every partition read (use --partition to pick one).
    #[arg(long, conflicts_with = "from", allow_negative_numbers = true)]
    offset: Option<i64>,
    /// Read only this partition; repeatable.
    #[arg(long = "partition", short = 'p')]
    partitions: Vec<i32>,
    /// Read as a member of this consumer group, committing what was printed.
    #[arg(long, short = 'g', conflicts_with_all = ["partitions", "offset"])]
    group: Option<String>,
    /// How values are decoded.
    #[arg(long, value_enum, default_value = "auto")]
    codec: CodecKind,
    /// Stop after printing this many records.
    #[arg(long, short = 'n')]
    max: Option<u64>,
    /// Keep waiting for new records at the end (Ctrl-C stops).
    #[arg(long)]
    follow: bool,
    /// Only records of this event type (header event-type, or the JSON envelope's "type");
    /// repeatable.
    #[arg(long = "event-type", short = 't', value_name = "TYPE")]
    event_types: Vec<String>,
    /// Only records with this key; repeatable.
    #[arg(long = "key", short = 'k')]
    keys: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The event type of a record: its `event-type` header, or the `type` of a JSON envelope.
pub(crate) fn event_type(record: &Record, value: &Value) -> Option<String> {
    record
        .header("event-type")
        .and_then(|h| h.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .or_else(|| value.get("type").and_then(Value::as_str).map(str::to_owned))
}

/// Headers as `[[name, value], ...]`, in order (duplicates kept).
pub(crate) fn headers_json(record: &Record) -> Value {
    Value::Array(
        record
            .headers
            .iter()
            .map(|h| {
                json!([
                    h.key,
                    h.value.as_ref().map_or(Value::Null, |v| text_or_base64(v))
                ])
            })
            .collect(),
    )
}

/// A record as one JSON object.
pub(crate) fn record_json(record: &Record, value: Value) -> Value {
    json!({
        "topic": record.topic.as_ref(),
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": record.key.as_ref().map_or(Value::Null, |k| text_or_base64(k)),
        "headers": headers_json(record),
        "value": value,
    })
}

/// `2026-11-28T10:00:00.000Z` for a timestamp in ms.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A value for people: JSON pretty-printed, text as is.
pub(crate) fn pretty_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "(null)".to_owned(),
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    }
}

fn print_pretty(out: &Output, record: &Record, value: &Value) {
    let key = record.key.as_ref().map_or_else(
        || "(none)".to_owned(),
        |k| String::from_utf8_lossy(k).into_owned(),
    );
    println!(
        "{}  {}  key={}",
        out.cyan(&format!(
            "{}/{}@{}",
            record.topic, record.partition, record.offset
        )),
        out.dim(&time(record.timestamp)),
        out.yellow(&key)
    );
    if !record.headers.is_empty() {
        let hs: Vec<String> = record
            .headers
            .iter()
            .map(|h| {
                format!(
                    "{}={}",
                    h.key,
                    h.value.as_ref().map_or_else(
                        || "(null)".to_owned(),
                        |v| String::from_utf8_lossy(v).into_owned()
                    )
                )
            })
            .collect();
        println!("  {}", out.dim(&hs.join("  ")));
    }
    for line in pretty_value(value).lines() {
        println!("  {line}");
    }
}

/// Where a record was read, for decode errors.
pub(crate) fn location(record: &Record) -> Location {
    Location {
        topic: record.topic.to_string(),
        partition: Some(record.partition),
        offset: Some(record.offset),
        key: false,
    }
}

enum Source {
    Scan(Scan),
    Group {
        consumer: Consumer,
        admin: Admin,
        ends: BTreeMap<TopicPartition, i64>,
        follow: bool,
    },
}

impl Source {
    async fn next(&mut self) -> CliResult<Option<Vec<Record>>> {
        match self {
            Source::Scan(s) => s.next().await,
            Source::Group {
                consumer,
                admin,
                ends,
                follow,
            } => loop {
                let batch = consumer.poll(Duration::from_millis(500)).await?;
                if !batch.is_empty() || *follow {
                    return Ok(Some(batch));
                }
                let assigned = consumer.assignment();
                if assigned.is_empty() {
                    continue;
                }
                let unknown: Vec<TopicPartition> = assigned
                    .iter()
                    .filter(|p| !ends.contains_key(*p))
                    .cloned()
                    .collect();
                ends.extend(scan::end_offsets(admin, &unknown).await?);
                let done = assigned.iter().all(|p| {
                    let end = ends.get(p).copied().unwrap_or(0);
                    consumer.position(p).is_some_and(|pos| pos >= end)
                });
                if done {
                    return Ok(None);
                }
            },
        }
    }

    async fn commit(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> CliResult {
        if let Source::Group { consumer, .. } = self {
            let list: Vec<(&str, i32, i64)> = offsets
                .iter()
                .map(|(p, o)| (p.topic.as_str(), p.partition, *o))
                .collect();
            if !list.is_empty() {
                consumer.commit_offsets(&list).await?;
            }
        }
        Ok(())
    }

    async fn close(self) -> CliResult {
        let closing = async {
            match self {
                Source::Scan(s) => s.close().await,
                Source::Group { consumer, .. } => {
                    consumer.close().await?;
                    Ok(())
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), closing)
            .await
            .unwrap_or(Ok(()))
    }
}

pub(crate) async fn run(c: Consume, tail: bool, global: &Global, out: &Output) -> CliResult {
    let follow = c.follow || tail;
    let start = match (&c.from, c.offset) {
        (Some(from), _) => Start::parse(from).map_err(|e| Failure::usage(anyhow!("--from {e}")))?,
        (None, Some(o)) if o >= 0 => Start::Offset(o),
        (None, Some(o)) => {
            return Err(Failure::usage(anyhow!(
                "--offset {o}: offsets start at 0 (use --from end to start at the end)"
            )));
        }
        (None, None) if tail => Start::End,
        (None, None) => Start::Beginning,
    };
    let mut decoder = Decoder::new(c.codec, &c.registry)?;
    let config = client_config(global)?;
    let mut source = match &c.group {
        None => Source::Scan(Scan::open(&config, &c.topic, &c.partitions, start, follow).await?),
        Some(group) => {
            let reset = match start {
                Start::Beginning => "earliest",
                Start::End => "latest",
                Start::Timestamp(_) | Start::Offset(_) => {
                    return Err(Failure::usage(anyhow!(
                        "with --group, --from is beginning or end (used where the group has no \
                         committed offset); move a group to a time with `gregor groups reset-offsets`"
                    )));
                }
            };
            let config = config
                .set("group.id", group.as_str())?
                .set("auto.offset.reset", reset)?
                .set("enable.auto.commit", "false")?;
            let admin = Admin::connect(&config).await?;
            scan::partitions(&admin, &c.topic, &[]).await?;
            let mut consumer = Consumer::connect(&config).await?;
            consumer.subscribe(&[c.topic.as_str()])?;
            Source::Group {
                consumer,
                admin,
                ends: BTreeMap::new(),
                follow,
            }
        }
    };

    let mut printed = 0u64;
    let result: CliResult = async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        'read: loop {
            if c.max.is_some_and(|m| printed >= m) {
                break;
            }
            let batch = tokio::select! {
                _ = &mut ctrl_c => break 'read,
                b = source.next() => b?,
            };
            let Some(batch) = batch else { break };
            let mut to_commit: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            for record in &batch {
                if c.max.is_some_and(|m| printed >= m) {
                    break;
                }
                to_commit.insert(
                    TopicPartition::new(record.topic.as_ref(), record.partition),
                    record.offset + 1,
                );
                if !c.keys.is_empty() {
                    let key = record.key.as_deref().map(String::from_utf8_lossy);
                    if !key.is_some_and(|k| c.keys.iter().any(|want| *want == k)) {
                        continue;
                    }
                }
                let value = match &record.value {
                    Some(bytes) => decoder.decode(bytes, &location(record)).await?,
                    None => Value::Null,
                };
                if !c.event_types.is_empty() {
                    let t = event_type(record, &value);
                    if !t.is_some_and(|t| c.event_types.contains(&t)) {
                        continue;
                    }
                }
                if out.json {
                    out.json_line(&record_json(record, value));
                } else {
                    print_pretty(out, record, &value);
                }
                printed += 1;
            }
            source.commit(&to_commit).await?;
        }
        Ok(())
    }
    .await;
    source.close().await?;
    result?;
    if !out.json {
        eprintln!("{printed} record{}", if printed == 1 { "" } else { "s" });
    }
    Ok(())
}
