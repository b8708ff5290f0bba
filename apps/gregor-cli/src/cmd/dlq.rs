//! `gregor dlq`: inspect dead-lettered records with their error headers, and replay them to
//! their original topic once (a ledger topic remembers what was replayed).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::anyhow;
use clap::Subcommand;
use gregor_client::{Admin, KafkaCode, NewTopic, Producer, ProducerRecord, Record};
use gregor_handler::dead_letter as dl;
use serde_json::{Value, json};

use super::client_config;
use super::consume::{location, pretty_value, record_json, time};
use crate::codec::{CodecKind, Decoder, RegistryArgs};
use crate::output::Output;
use crate::scan::{Scan, Start};
use crate::{CliResult, Failure, Global};

/// Header set on every replayed record: `<dlq topic>/<partition>/<offset>` it came from.
pub(crate) const REPLAYED_FROM: &str = "replayed_from";

#[derive(Debug, Subcommand)]
pub(crate) enum Dlq {
    /// Show dead-lettered records with their error headers (error, error_class, retry_count,
    /// original topic/partition/offset/timestamp, consumer group) and whether they were replayed.
    Inspect(Inspect),
    /// Send dead-lettered records back to their original topic (header original_topic), once.
    ///
    /// Each record selected (all, or filtered by --error-class, --partition and the offset range)
    /// is sent to its original topic with its key, value and original headers (the dead-letter
    /// headers removed, a replayed_from header added), one at a time, at most --rate per second.
    /// After the original topic acknowledged it, its position in the dead-letter topic is written
    /// to a compacted ledger topic (default DLQ.replayed, created when missing); the ledger is
    /// read before replaying, and records in it are skipped, so a second replay sends nothing.
    /// If the process dies between the acknowledgement and the ledger write, that one record is
    /// sent again by the next replay: at most one duplicate per interrupted run.
    Replay(Replay),
}

/// Which dead-lettered records a command works on.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Select {
    /// Only records with this error_class header (retriable, fatal, ...); repeatable.
    #[arg(long = "error-class", value_name = "CLASS")]
    error_classes: Vec<String>,
    /// Only these partitions of the dead-letter topic; repeatable.
    #[arg(long = "partition", short = 'p')]
    partitions: Vec<i32>,
    /// Only records at or after this offset (in each partition read).
    #[arg(long, value_name = "OFFSET")]
    from_offset: Option<i64>,
    /// Only records at or before this offset (inclusive).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
}

impl Select {
    fn check(&self) -> CliResult {
        if let (Some(a), Some(b)) = (self.from_offset, self.to_offset)
            && a > b
        {
            return Err(Failure::usage(anyhow!(
                "--from-offset {a} is after --to-offset {b}: the range is empty"
            )));
        }
        Ok(())
    }

    fn start(&self) -> Start {
        match self.from_offset {
            Some(o) if o > 0 => Start::Offset(o),
            _ => Start::Beginning,
        }
    }

    fn matches(&self, r: &Record) -> bool {
        if self.from_offset.is_some_and(|o| r.offset < o)
            || self.to_offset.is_some_and(|o| r.offset > o)
        {
            return false;
        }
        self.error_classes.is_empty()
            || header(r, dl::ERROR_CLASS).is_some_and(|c| self.error_classes.contains(&c))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Inspect {
    /// The dead-letter topic (e.g. commerce.orders.created.dlq).
    topic: String,
    #[command(flatten)]
    select: Select,
    /// Show at most this many records.
    #[arg(long, short = 'n')]
    max: Option<u64>,
    /// How values are decoded.
    #[arg(long, value_enum, default_value = "auto")]
    codec: CodecKind,
    /// The replay ledger topic (default: TOPIC.replayed).
    #[arg(long, value_name = "TOPIC")]
    ledger: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Replay {
    /// The dead-letter topic.
    topic: String,
    #[command(flatten)]
    select: Select,
    /// At most this many records per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Send to this topic instead of each record's original_topic header.
    #[arg(long, value_name = "TOPIC")]
    to_topic: Option<String>,
    /// The replay ledger topic (default: TOPIC.replayed).
    #[arg(long, value_name = "TOPIC")]
    ledger: Option<String>,
    /// Show what would be replayed, send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn header(r: &Record, name: &str) -> Option<String> {
    r.header(name)
        .and_then(|h| h.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The ledger key of a dead-lettered record.
fn ledger_key(r: &Record) -> String {
    format!("{}/{}", r.partition, r.offset)
}

fn ledger_name(topic: &str, ledger: Option<&String>) -> String {
    ledger
        .cloned()
        .unwrap_or_else(|| format!("{topic}.replayed"))
}

/// The keys in the ledger (tombstones remove a key); empty when the ledger does not exist.
async fn read_ledger(
    config: &gregor_client::ClientConfig,
    ledger: &str,
) -> CliResult<HashSet<String>> {
    let admin = Admin::connect(config).await?;
    let meta = admin.describe_topics(&[ledger]).await?;
    if meta.topic(ledger).is_none_or(|t| t.error.is_some()) {
        return Ok(HashSet::new());
    }
    let records = Scan::open(config, ledger, &[], Start::Beginning, false)
        .await?
        .collect()
        .await?;
    let mut keys = HashSet::new();
    for r in records {
        let Some(k) = r
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
        else {
            continue;
        };
        if r.value.is_some() {
            keys.insert(k);
        } else {
            keys.remove(&k);
        }
    }
    Ok(keys)
}

fn dead_letter_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for name in dl::HEADERS {
        m.insert(
            name.to_owned(),
            header(r, name).map_or(Value::Null, Value::String),
        );
    }
    Value::Object(m)
}

pub(crate) async fn run(cmd: Dlq, global: &Global, out: &Output) -> CliResult {
    match cmd {
        Dlq::Inspect(i) => inspect(i, global, out).await,
        Dlq::Replay(r) => replay(r, global, out).await,
    }
}

async fn inspect(i: Inspect, global: &Global, out: &Output) -> CliResult {
    i.select.check()?;
    let config = client_config(global)?;
    let mut decoder = Decoder::new(i.codec, &i.registry)?;
    let ledger = read_ledger(&config, &ledger_name(&i.topic, i.ledger.as_ref())).await?;
    let mut scan = Scan::open(
        &config,
        &i.topic,
        &i.select.partitions,
        i.select.start(),
        false,
    )
    .await?;
    let mut shown = 0u64;
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    'read: while let Some(batch) = scan.next().await? {
        for r in batch {
            if i.max.is_some_and(|m| shown >= m) {
                break 'read;
            }
            if !i.select.matches(&r) {
                continue;
            }
            let value = match &r.value {
                Some(bytes) => decoder.decode(bytes, &location(&r)).await?,
                None => Value::Null,
            };
            let replayed = ledger.contains(&ledger_key(&r));
            let class = header(&r, dl::ERROR_CLASS).unwrap_or_else(|| "-".to_owned());
            *by_class.entry(class.clone()).or_default() += 1;
            shown += 1;
            if out.json {
                let mut v = record_json(&r, value);
                v["dead_letter"] = dead_letter_json(&r);
                v["replayed"] = json!(replayed);
                out.json_line(&v);
                continue;
            }
            let h = |n: &str| header(&r, n).unwrap_or_else(|| "-".to_owned());
            println!(
                "{}  {}  key={}  [{}]{}",
                out.cyan(&format!("{}/{}@{}", r.topic, r.partition, r.offset)),
                out.dim(&time(r.timestamp)),
                r.key.as_ref().map_or_else(
                    || "(none)".to_owned(),
                    |k| String::from_utf8_lossy(k).into_owned()
                ),
                out.yellow(&class),
                if replayed { "  replayed" } else { "" }
            );
            println!("  error: {}", out.red(&h(dl::ERROR)));
            println!(
                "  from {}/{}@{}  group {}  retries {}  at {}",
                h(dl::ORIGINAL_TOPIC),
                h(dl::ORIGINAL_PARTITION),
                h(dl::ORIGINAL_OFFSET),
                h(dl::CONSUMER_GROUP),
                h(dl::RETRY_COUNT),
                h(dl::ORIGINAL_TIMESTAMP)
            );
            let others: Vec<String> = r
                .headers
                .iter()
                .filter(|x| !dl::HEADERS.contains(&x.key.as_str()))
                .map(|x| {
                    format!(
                        "{}={}",
                        x.key,
                        x.value.as_ref().map_or_else(
                            || "(null)".to_owned(),
                            |v| String::from_utf8_lossy(v).into_owned()
                        )
                    )
                })
                .collect();
            if !others.is_empty() {
                println!("  {}", out.dim(&others.join("  ")));
            }
            for line in pretty_value(&value).lines() {
                println!("  {line}");
            }
        }
    }
    scan.close().await?;
    if !out.json {
        let classes: Vec<String> = by_class.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        eprintln!(
            "{shown} dead-lettered record{}{}",
            if shown == 1 { "" } else { "s" },
            if classes.is_empty() {
                String::new()
            } else {
                format!(" ({})", classes.join(", "))
            }
        );
    }
    Ok(())
}

async fn replay(r: Replay, global: &Global, out: &Output) -> CliResult {
    r.select.check()?;
    if !(r.rate.is_finite() && r.rate > 0.0) {
        return Err(Failure::usage(anyhow!(
            "--rate {}: give a positive number of records per second",
            r.rate
        )));
    }
    let config = client_config(global)?;
    let ledger_topic = ledger_name(&r.topic, r.ledger.as_ref());
    let admin = Admin::connect(&config).await?;
    if !r.dry_run {
        let ledger = NewTopic::new(&ledger_topic, 1, -1).config("cleanup.policy", "compact");
        match admin.create_topics(&[ledger]).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let done = read_ledger(&config, &ledger_topic).await?;
    let records = Scan::open(
        &config,
        &r.topic,
        &r.select.partitions,
        r.select.start(),
        false,
    )
    .await?
    .collect()
    .await?;
    let mut filtered_out = 0u64;
    let mut already = 0u64;
    let mut todo = Vec::new();
    for rec in records {
        if !r.select.matches(&rec) {
            filtered_out += 1;
        } else if done.contains(&ledger_key(&rec)) {
            already += 1;
        } else {
            todo.push(rec);
        }
    }
    let mut unroutable = 0u64;
    let mut replayed: BTreeMap<String, u64> = BTreeMap::new();
    let mut plan = Vec::new();
    for rec in &todo {
        match r
            .to_topic
            .clone()
            .or_else(|| header(rec, dl::ORIGINAL_TOPIC))
        {
            Some(t) => plan.push((rec, t)),
            None => {
                unroutable += 1;
                eprintln!(
                    "warning: {}/{}@{} has no {} header: skipped (use --to-topic)",
                    rec.topic,
                    rec.partition,
                    rec.offset,
                    dl::ORIGINAL_TOPIC
                );
            }
        }
    }
    if !r.dry_run && !plan.is_empty() {
        let producer = Producer::connect(&config).await?;
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(plan.len() as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} replayed ({per_sec}, {eta})",
        ) {
            bar.set_style(style);
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / r.rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result: CliResult = async {
            for (rec, target) in &plan {
                tick.tick().await;
                let mut out = ProducerRecord::new(target.as_str(), Vec::new());
                out.value = rec.value.clone();
                out.key = rec.key.clone();
                out.headers = rec
                    .headers
                    .iter()
                    .filter(|h| !dl::HEADERS.contains(&h.key.as_str()) && h.key != REPLAYED_FROM)
                    .cloned()
                    .collect();
                let from = format!("{}/{}/{}", rec.topic, rec.partition, rec.offset);
                out = out.header(REPLAYED_FROM, from.clone().into_bytes());
                let meta = producer.send(out).await.map_err(|e| {
                    anyhow!("replaying {from} to {target}: {e} (records before it were replayed and recorded)")
                })?;
                let entry = json!({
                    "to": format!("{}/{}/{}", meta.topic, meta.partition, meta.offset),
                    "at": time(chrono::Utc::now().timestamp_millis()),
                });
                producer
                    .send(
                        ProducerRecord::new(ledger_topic.as_str(), entry.to_string().into_bytes())
                            .key(ledger_key(rec).into_bytes()),
                    )
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "{from} was replayed to {}/{}@{} but recording it in {ledger_topic} failed: {e} \
                             (the next replay sends it again)",
                            meta.topic,
                            meta.partition,
                            meta.offset
                        )
                    })?;
                *replayed.entry(target.clone()).or_default() += 1;
                bar.inc(1);
            }
            Ok(())
        }
        .await;
        bar.finish_and_clear();
        producer.close().await?;
        result?;
    }
    let would: u64 = plan.len() as u64;
    if out.json {
        out.json(&json!({
            "dlq": r.topic,
            "ledger": ledger_topic,
            "dry_run": r.dry_run,
            "replayed": if r.dry_run { json!({}) } else { json!(replayed) },
            "selected": would,
            "already_replayed": already,
            "filtered_out": filtered_out,
            "unroutable": unroutable,
        }));
    } else if r.dry_run {
        for (rec, target) in &plan {
            println!(
                "would replay {}/{}@{} -> {target}  [{}]",
                rec.topic,
                rec.partition,
                rec.offset,
                header(rec, dl::ERROR_CLASS).unwrap_or_else(|| "-".to_owned())
            );
        }
        println!(
            "dry run: {would} to replay, {already} already replayed, {filtered_out} filtered out, {unroutable} without original_topic; nothing sent"
        );
    } else {
        let total: u64 = replayed.values().sum();
        let per: Vec<String> = replayed.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        println!(
            "replayed {total}{}; {already} already replayed (skipped), {filtered_out} filtered out, {unroutable} without original_topic",
            if per.is_empty() {
                String::new()
            } else {
                format!(" ({})", per.join(", "))
            }
        );
    }
    Ok(())
}
