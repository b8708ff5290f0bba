//! gregor's producer against rust-rdkafka (librdkafka) on the same broker, in one run.
//!
//! ```text
//! cd bench/producer
//! CARGO_TARGET_DIR=../../target/h-producer-bench cargo run --release -- compare --runs 3
//! ```
//!
//! `compare` runs four workloads: 1,000,000 records of 100 B and 200,000 of 1 KiB, each with
//! compression none and lz4, to a fresh 6-partition topic per run (replication 1), alternating
//! the clients run by run (A B A B ...), each run in its own process (bench/README.md's peer
//! contract: one JSON line per run). Reported: medians of records/s, MB/s of values, client CPU
//! seconds (user + sys of the whole process, /proc/self/stat) and peak RSS (VmHWM).
//!
//! Equal settings: acks=all, linger 5 ms, batches up to 1 MiB (gregor: batch.size =
//! max.request.size = 1 MiB; librdkafka: batch.size 1 MiB), at most 10,000 records per batch,
//! 100,000 records buffered, 5 requests in flight, keyed records (10,000 distinct keys) placed
//! by murmur2 (gregor's default; librdkafka `partitioner=murmur2_random`), values from one
//! seeded generator (text-like, lz4 shrinks them to about half).
//!
//! `peer --client gregor|rdkafka --bootstrap B --topic T --records N --size S --compression C`
//! runs one workload and prints its JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use gregor_client::{
    Admin, ClientConfig as GregorConfig, NewTopic, OffsetSpec, Producer, ProducerRecord,
};
use rdkafka::ClientContext;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};

const KEYS: usize = 10_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// user + sys CPU seconds of this process (all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0 // CLK_TCK is 100 on Linux
}

/// Peak resident set size in KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `n` values of `size` bytes, text-like, from a fixed seed: every client sends the same bytes.
fn values(n: usize, size: usize) -> Vec<Bytes> {
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
    // A pool of distinct values is enough; records reuse them round-robin.
    let distinct = n.min(1024);
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

fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("user-{i}")))
        .collect()
}

struct Outcome {
    acked: u64,
    errors: u64,
    seconds: f64,
}

async fn produce_gregor(
    bootstrap: &str,
    topic: &str,
    records: usize,
    size: usize,
    compression: &str,
    in_flight: &str,
) -> Result<Outcome> {
    let config = GregorConfig::new()
        .set("bootstrap.servers", bootstrap)?
        .set("client.id", "bench-gregor")?
        .set("acks", "all")?
        .set("linger.ms", "5")?
        .set("batch.size", "1048576")?
        .set("max.request.size", "1048576")?
        .set("batch.num.messages", "10000")?
        .set("queue.buffering.max.messages", "100000")?
        .set("max.in.flight.requests.per.connection", in_flight)?
        .set("compression.type", compression)?;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (a, e) = (Arc::clone(&acked), Arc::clone(&errors));
    let producer = Producer::builder(&config)
        .on_delivery(move |d| {
            if d.result.is_ok() {
                a.fetch_add(1, Ordering::Relaxed);
            } else {
                e.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .await?;
    let values = values(records, size);
    let keys = keys();
    let topic: Arc<str> = Arc::from(topic);
    // Metadata and partition connections before the clock starts, as for librdkafka below.
    producer.partitions(&topic).await?;
    let start = Instant::now();
    for i in 0..records {
        let record = ProducerRecord::new(Arc::clone(&topic), values[i % values.len()].clone())
            .key(keys[i % KEYS].clone());
        producer.produce(record).await?;
    }
    producer.flush().await;
    let seconds = start.elapsed().as_secs_f64();
    producer.close().await?;
    Ok(Outcome {
        acked: acked.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        seconds,
    })
}

struct Counting {
    acked: AtomicU64,
    errors: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn produce_rdkafka(
    bootstrap: &str,
    topic: &str,
    records: usize,
    size: usize,
    compression: &str,
) -> Result<Outcome> {
    let context = Counting {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    };
    let producer: ThreadedProducer<Counting> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "bench-rdkafka")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "100000")
        .set("max.in.flight.requests.per.connection", "5")
        .set("enable.idempotence", "false")
        .set("compression.type", compression)
        .set("partitioner", "murmur2_random")
        .create_with_context(context)?;
    let values = values(records, size);
    let keys = keys();
    // Metadata before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let start = Instant::now();
    for i in 0..records {
        let value = &values[i % values.len()];
        let key = &keys[i % KEYS];
        let mut record = BaseRecord::to(topic).payload(&value[..]).key(&key[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    #[allow(
                        clippy::disallowed_methods,
                        reason = "a blocking thread waiting for librdkafka's queue to drain"
                    )]
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("rdkafka send: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let seconds = start.elapsed().as_secs_f64();
    let context = producer.context();
    Ok(Outcome {
        acked: context.acked.load(Ordering::Relaxed),
        errors: context.errors.load(Ordering::Relaxed),
        seconds,
    })
}

async fn peer(args: &[String]) -> Result<()> {
    let client = arg(args, "--client").context("--client")?;
    let bootstrap = arg(args, "--bootstrap").context("--bootstrap")?;
    let topic = arg(args, "--topic").context("--topic")?;
    let records: usize = arg(args, "--records").context("--records")?.parse()?;
    let size: usize = arg(args, "--size").context("--size")?.parse()?;
    let compression = arg(args, "--compression").unwrap_or_else(|| "none".into());
    let in_flight = arg(args, "--in-flight").unwrap_or_else(|| "5".into());
    let out = match client.as_str() {
        "gregor" => {
            produce_gregor(&bootstrap, &topic, records, size, &compression, &in_flight).await?
        }
        "rdkafka" => {
            let (b, t, c) = (bootstrap.clone(), topic.clone(), compression.clone());
            tokio::task::spawn_blocking(move || produce_rdkafka(&b, &t, records, size, &c))
                .await??
        }
        other => bail!("unknown client {other}"),
    };
    if out.acked != records as u64 || out.errors != 0 {
        bail!(
            "{client}: {} acknowledged, {} failed of {records}",
            out.acked,
            out.errors
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "client": if client == "rdkafka" { "librdkafka" } else { "gregor" },
            "mode": "produce", "records": out.acked, "bytes": out.acked * size as u64,
            "seconds": out.seconds, "errors": out.errors, "compression": compression,
            "size": size, "cpu_seconds": cpu_seconds(), "peak_rss_kib": peak_rss_kib(),
        })
    );
    Ok(())
}

async fn child(args: &[&str]) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let out = tokio::process::Command::new(exe)
        .args(args)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "{args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.lines().last().context("no output")?;
    Ok(serde_json::from_str(line)?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[derive(Default)]
struct Runs {
    rate: Vec<f64>,
    mb: Vec<f64>,
    cpu: Vec<f64>,
    cpu_per_m: Vec<f64>,
    rss: Vec<f64>,
}

async fn compare(args: &[String]) -> Result<()> {
    let runs: usize = arg(args, "--runs").map_or(Ok(3), |r| r.parse())?;
    let scale: f64 = arg(args, "--scale").map_or(Ok(1.0), |r| r.parse())?;
    let only = arg(args, "--only");
    let in_flight = arg(args, "--in-flight").unwrap_or_else(|| "5".into());
    let kafka = gregor_testkit::Kafka::shared().await?;
    let bootstrap = kafka.bootstrap().to_owned();
    let admin = Admin::connect(&GregorConfig::new().set("bootstrap.servers", &bootstrap)?).await?;
    let workloads = [
        (1_000_000, 100, "none"),
        (1_000_000, 100, "lz4"),
        (200_000, 1024, "none"),
        (200_000, 1024, "lz4"),
    ];
    eprintln!("broker {bootstrap}; {runs} runs per client and workload, alternating");
    println!(
        "| workload | client | records/s | MB/s | CPU s | CPU µs/record | peak RSS MiB |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut summary = Vec::new();
    for (records, size, compression) in workloads {
        let records = ((records as f64) * scale) as usize;
        let name = format!("{records} x {size} B, {compression}");
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut results: std::collections::BTreeMap<String, Runs> = Default::default();
        for run in 0..runs {
            let order = if run % 2 == 0 {
                ["gregor", "rdkafka"]
            } else {
                ["rdkafka", "gregor"]
            };
            for client in order {
                let topic = gregor_testkit::unique_topic("bench-produce");
                admin.create_topics(&[NewTopic::new(&topic, 6, 1)]).await?;
                admin
                    .wait_for_leaders(&[&topic], Duration::from_secs(30))
                    .await?;
                let (n, s) = (records.to_string(), size.to_string());
                let v = child(&[
                    "peer",
                    "--client",
                    client,
                    "--bootstrap",
                    &bootstrap,
                    "--topic",
                    &topic,
                    "--records",
                    &n,
                    "--size",
                    &s,
                    "--compression",
                    compression,
                    "--in-flight",
                    &in_flight,
                ])
                .await?;
                // What the client reported is on the broker: the partitions' end offsets add up.
                let specs: Vec<(&str, i32, OffsetSpec)> = (0..6)
                    .map(|p| (topic.as_str(), p, OffsetSpec::Latest))
                    .collect();
                let stored: i64 = admin
                    .list_offsets(&specs, false)
                    .await?
                    .iter()
                    .filter_map(|l| l.offset)
                    .sum();
                if stored != records as i64 {
                    bail!("{client}: {topic} holds {stored} records, not {records}");
                }
                admin.delete_topics(&[&topic]).await?;
                eprintln!("{v}");
                let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
                let recs = v["records"].as_f64().unwrap_or(0.0);
                let bytes = v["bytes"].as_f64().unwrap_or(0.0);
                let cpu = v["cpu_seconds"].as_f64().unwrap_or(f64::NAN);
                let r = results
                    .entry(v["client"].as_str().unwrap_or(client).to_owned())
                    .or_default();
                r.rate.push(recs / secs);
                r.mb.push(bytes / secs / 1e6);
                r.cpu.push(cpu);
                r.cpu_per_m.push(cpu / recs * 1e6);
                r.rss
                    .push(v["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0);
            }
        }
        let mut med = std::collections::BTreeMap::new();
        for (client, r) in &results {
            let (rate, mb, cpu, per, rss) = (
                median(r.rate.clone()),
                median(r.mb.clone()),
                median(r.cpu.clone()),
                median(r.cpu_per_m.clone()),
                median(r.rss.clone()),
            );
            med.insert(client.clone(), (rate, per));
            println!(
                "| {name} | {client} | {rate:.0} | {mb:.1} | {cpu:.2} | {per:.2} | {rss:.0} |"
            );
        }
        if let (Some(g), Some(l)) = (med.get("gregor"), med.get("librdkafka")) {
            summary.push(format!(
                "{name}: throughput {:.2}x librdkafka, CPU per record {:.2}x",
                g.0 / l.0,
                g.1 / l.1
            ));
        }
    }
    println!();
    for line in summary {
        println!("- {line}");
    }
    Ok(())
}

/// `topic --bootstrap B --topic T`: a 6-partition topic for running `peer` by hand (profiling).
async fn create_topic(args: &[String]) -> Result<()> {
    let bootstrap = arg(args, "--bootstrap").context("--bootstrap")?;
    let topic = arg(args, "--topic").context("--topic")?;
    let admin = Admin::connect(&GregorConfig::new().set("bootstrap.servers", &bootstrap)?).await?;
    admin.create_topics(&[NewTopic::new(&topic, 6, 1)]).await?;
    admin
        .wait_for_leaders(&[&topic], Duration::from_secs(30))
        .await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("peer") => peer(&args).await,
        Some("compare") => compare(&args).await,
        Some("topic") => create_topic(&args).await,
        _ => bail!(
            "usage: gregor-producer-bench compare [--runs N] [--scale F] [--only TEXT] [--in-flight N] | topic --bootstrap B --topic T | peer --client gregor|rdkafka --bootstrap B --topic T --records N --size S [--compression C]"
        ),
    }
}
