//! `gregor produce`: records from stdin or a file, one per line, through a codec.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use anyhow::anyhow;
use gregor_client::{DeliveryFuture, Producer, ProducerRecord};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::client_config;
use crate::codec::{AvroArgs, CodecKind, Encoder, Payload, RegistryArgs};
use crate::output::Output;
use crate::{CliResult, Failure, Global};

/// Records waiting for their acknowledgement before reading more input.
const MAX_PENDING: usize = 10_000;

/// Input line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// KEY<TAB>VALUE; a line without a tab is a value without key.
    Kv,
    /// One JSON object per line: {"key": "k" or null, "value": ..., "headers": {"name": "v"}
    /// or [["name", "v"], ...], "partition": 0, "timestamp": 1764324000000}; only "value" is
    /// required. `gregor consume --json` prints this shape, so its output can be produced again.
    Json,
}

/// Send records read from stdin or a file, one per line.
///
/// Input formats: `--format kv` (default): KEY<TAB>VALUE, or just VALUE without a tab (no key).
/// `--format json`: one object per line,
/// {"key": "k", "value": ..., "headers": [["name", "value"], ...], "partition": 0, "timestamp": MS};
/// headers may also be an object {"name": "value"}; only "value" is required, and other fields
/// (topic, offset, as `gregor consume --json` prints them) are ignored.
/// Values go through --codec: string (as is), json (checked), avro (JSON resolved against
/// --schema, registered in the registry under the subject of --subject-strategy, Confluent framing).
/// Prints the records sent per partition. A bad line stops the command with exit code 2, naming the
/// line; records before it were sent.
/// Headers travel through rskafka as a map: of several headers with one name only the last is
/// sent, they arrive sorted by name, and a null value arrives empty (a warning says when).
#[derive(Debug, clap::Args)]
pub(crate) struct Produce {
    /// Topic to send to.
    topic: String,
    /// Read this file instead of stdin (shows a progress bar on a terminal).
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Input line format.
    #[arg(long, value_enum, default_value = "kv")]
    format: Format,
    /// How values are encoded.
    #[arg(long, value_enum, default_value = "string")]
    codec: CodecKind,
    /// Send every record to this partition instead of the partitioner's choice.
    #[arg(long)]
    partition: Option<i32>,
    /// A header added to every record (NAME=VALUE); repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    avro: AvroArgs,
}

/// One parsed input line.
#[derive(Debug)]
struct Line {
    key: Option<String>,
    value: Option<Payload>,
    headers: Vec<(String, Option<String>)>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

fn parse_line(text: &str, format: Format) -> Result<Line, String> {
    match format {
        Format::Kv => {
            let (key, value) = match text.split_once('\t') {
                Some((k, v)) => (Some(k.to_owned()), v),
                None => (None, text),
            };
            Ok(Line {
                key,
                value: Some(Payload::Text(value.to_owned())),
                headers: Vec::new(),
                partition: None,
                timestamp: None,
            })
        }
        Format::Json => {
            let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
            let Value::Object(mut obj) = v else {
                return Err("expected a JSON object with a \"value\" field".into());
            };
            let key = match obj.remove("key") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(other) => Some(other.to_string()),
            };
            let value = match obj.remove("value") {
                None => return Err("no \"value\" field (use null for a tombstone)".into()),
                Some(Value::Null) => None,
                Some(v) => Some(Payload::Json(v)),
            };
            let headers = match obj.remove("headers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(map)) => map
                    .into_iter()
                    .map(|(k, v)| header_value(v).map(|v| (k, v)))
                    .collect::<Result<_, _>>()?,
                Some(Value::Array(pairs)) => pairs
                    .into_iter()
                    .map(|pair| match pair {
                        Value::Array(mut kv) if kv.len() == 2 => {
                            let v = kv.pop().unwrap_or(Value::Null);
                            match kv.pop() {
                                Some(Value::String(k)) => header_value(v).map(|v| (k, v)),
                                _ => Err("a header name must be a string".to_owned()),
                            }
                        }
                        _ => Err("headers as an array hold [name, value] pairs".to_owned()),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(
                        "\"headers\" must be an object or an array of [name, value] pairs".into(),
                    );
                }
            };
            let int = |name: &str, v: Option<Value>| -> Result<Option<i64>, String> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => n
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| format!("\"{name}\" must be an integer")),
                    Some(_) => Err(format!("\"{name}\" must be an integer")),
                }
            };
            let partition = int("partition", obj.remove("partition"))?
                .map(|p| i32::try_from(p).map_err(|_| format!("partition {p} is out of range")))
                .transpose()?;
            let timestamp = int("timestamp", obj.remove("timestamp"))?;
            Ok(Line {
                key,
                value,
                headers,
                partition,
                timestamp,
            })
        }
    }
}

fn header_value(v: Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Ok(Some(other.to_string())),
    }
}

pub(crate) async fn run(p: Produce, global: &Global, out: &Output) -> CliResult {
    let extra_headers: Vec<(String, String)> = p
        .headers
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Failure::usage(anyhow!("--header {h:?}: expected NAME=VALUE")))
        })
        .collect::<CliResult<_>>()?;
    if p.codec == CodecKind::Auto {
        return Err(Failure::usage(anyhow!(
            "--codec auto is for reading: choose string, json or avro"
        )));
    }
    let (reader, size): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = match &p.file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Failure::usage(anyhow!("{}: {e}", path.display())))?;
            let size = file.metadata().await.ok().map(|m| m.len());
            (Box::new(file), size)
        }
        None => (Box::new(tokio::io::stdin()), None),
    };
    let config = client_config(global)?;
    let encoder = Encoder::new(p.codec, &p.topic, &p.registry, &p.avro).await?;
    let producer = Producer::connect(&config).await?;
    // Fail before reading input if the topic is not there.
    producer.partitions(&p.topic).await?;

    let bar = match size {
        Some(len) => {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(len),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => indicatif::ProgressBar::hidden(),
    };

    let mut lines = BufReader::new(reader).lines();
    let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    let mut sent = 0u64;
    let mut line_no = 0usize;
    let mut null_headers = 0u64;
    let result: CliResult = async {
        loop {
            let text = match lines.next_line().await {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::usage(anyhow!(
                        "input line {}: {e} (is it UTF-8 text?)",
                        line_no + 1
                    )));
                }
            };
            line_no += 1;
            bar.inc(text.len() as u64 + 1);
            let text = text.strip_suffix('\r').unwrap_or(&text);
            if text.trim().is_empty() {
                continue;
            }
            let line = parse_line(text, p.format)
                .map_err(|e| Failure::usage(anyhow!("input line {line_no}: {e}")))?;
            let value = match line.value {
                Some(v) => Some(
                    encoder
                        .encode(v)
                        .map_err(|e| Failure::usage(anyhow!("input line {line_no}: {e}")))?,
                ),
                None => None,
            };
            let mut record = ProducerRecord::new(p.topic.as_str(), Vec::new());
            record.value = value.map(Into::into);
            if let Some(k) = line.key {
                record = record.key(k.into_bytes());
            }
            if let Some(part) = line.partition.or(p.partition) {
                record = record.partition(part);
            }
            if let Some(ts) = line.timestamp {
                record = record.timestamp(ts);
            }
            for (k, v) in line.headers {
                null_headers += u64::from(v.is_none());
                record
                    .headers
                    .push(gregor_client::Header::new(k, v.map(Into::into)));
            }
            for (k, v) in &extra_headers {
                record = record.header(k.as_str(), v.clone().into_bytes());
            }
            let delivery = producer.enqueue(record).await.map_err(|e| {
                anyhow!("input line {line_no}: {e} ({sent} records were acknowledged before it)")
            })?;
            pending.push_back((line_no, delivery));
            while pending.len() >= MAX_PENDING {
                if let Some((n, d)) = pending.pop_front() {
                    let meta = d.await.map_err(|e| {
                        anyhow!("input line {n}: {e} ({sent} records were acknowledged before it)")
                    })?;
                    *per_partition.entry(meta.partition).or_default() += 1;
                    sent += 1;
                }
            }
        }
        while let Some((n, d)) = pending.pop_front() {
            let meta = d.await.map_err(|e| {
                anyhow!("input line {n}: {e} ({sent} records were acknowledged before it)")
            })?;
            *per_partition.entry(meta.partition).or_default() += 1;
            sent += 1;
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    let merged = producer.stats().headers_merged;
    producer.close().await?;
    if merged > 0 || null_headers > 0 {
        eprintln!(
            "warning: {merged} header(s) with a repeated name were merged (the last value was sent) \
             and {null_headers} null header value(s) were sent empty: the producer's headers are a map"
        );
    }
    result?;
    if out.json {
        out.json(&json!({
            "topic": p.topic,
            "sent": sent,
            "partitions": per_partition
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
        }));
    } else {
        let parts: Vec<String> = per_partition
            .iter()
            .map(|(k, v)| format!("partition {k}: {v}"))
            .collect();
        println!(
            "sent {sent} record{} to {}{}{}",
            if sent == 1 { "" } else { "s" },
            p.topic,
            if parts.is_empty() { "" } else { " (" },
            if parts.is_empty() {
                String::new()
            } else {
                parts.join(", ") + ")"
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_lines_split_at_the_first_tab() {
        let l = parse_line("user-1\t{\"a\":\"b\tc\"}", Format::Kv).unwrap();
        assert_eq!(l.key.as_deref(), Some("user-1"));
        assert!(matches!(l.value, Some(Payload::Text(ref v)) if v == "{\"a\":\"b\tc\"}"));
        let l = parse_line("no key here", Format::Kv).unwrap();
        assert_eq!(l.key, None);
    }

    #[test]
    fn json_lines_take_headers_as_pairs_or_object() {
        let l = parse_line(
            r#"{"key":"k","value":{"x":1},"headers":[["a","1"],["a","2"],["n",null]],"partition":2,"timestamp":5,"offset":9}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(
            l.headers,
            vec![
                ("a".to_owned(), Some("1".to_owned())),
                ("a".to_owned(), Some("2".to_owned())),
                ("n".to_owned(), None)
            ]
        );
        assert_eq!((l.partition, l.timestamp), (Some(2), Some(5)));
        let l = parse_line(r#"{"value":null,"headers":{"h":"v"}}"#, Format::Json).unwrap();
        assert!(l.value.is_none());
        assert_eq!(l.headers, vec![("h".to_owned(), Some("v".to_owned()))]);
        for bad in [
            "[1]",
            r#"{"key":"k"}"#,
            r#"{"value":1,"headers":5}"#,
            r#"{"value":1,"partition":"x"}"#,
            "{",
        ] {
            assert!(parse_line(bad, Format::Json).is_err(), "{bad}");
        }
    }
}
