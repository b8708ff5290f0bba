//! `order-demo`: the order pipeline end to end, as `just demo` runs it.
//!
//! ```text
//! Kafka + schema registry (gregor-testkit) ─▶ topics of deployments/topics.yaml
//!   ─▶ order-consumer (group order-processor, from the current end offsets)
//!   ─▶ order-producer (N orders + poison: invalid JSON, an unknown schema id; transient failures;
//!      events of a type the consumer filters) ─▶ wait until the group committed everything
//!   ─▶ SIGTERM the consumer ─▶ summary: produced = processed + dead-lettered + filtered,
//!      per-topic counts checked against the broker's offsets
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use gregor::client::{
    Admin, ClientConfig, Consumer, KafkaCode, NewTopic, OffsetSpec, TopicPartition,
};
use tokio::io::AsyncReadExt;

/// Runs the order pipeline against a local Kafka and schema registry and checks the numbers.
#[derive(Debug, Parser)]
#[command(name = "order-demo")]
struct Args {
    /// Orders to produce (poison and filtered records come on top).
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: u64,
    /// Consumer group of the demo's consumer.
    #[arg(long, default_value = "order-processor")]
    group: String,
}

#[derive(serde::Deserialize)]
struct Manifest {
    topics: Vec<TopicSpec>,
}

#[derive(serde::Deserialize)]
struct TopicSpec {
    name: String,
    partitions: i32,
    replication: i16,
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating order-demo")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p {name})",
            path.display()
        );
    }
    Ok(path)
}

async fn end_offsets(admin: &Admin, topics: &[TopicSpec]) -> Result<BTreeMap<String, i64>> {
    let specs: Vec<(&str, i32, OffsetSpec)> = topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.name.as_str(), p, OffsetSpec::Latest)))
        .collect();
    let mut out: BTreeMap<String, i64> = topics.iter().map(|t| (t.name.clone(), 0)).collect();
    for l in admin.list_offsets(&specs, false).await? {
        *out.entry(l.topic.clone()).or_default() += l.offset.unwrap_or(0);
    }
    Ok(out)
}

async fn per_partition_ends(
    admin: &Admin,
    topics: &[&TopicSpec],
) -> Result<Vec<(TopicPartition, i64)>> {
    let specs: Vec<(&str, i32, OffsetSpec)> = topics
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.name.as_str(), p, OffsetSpec::Latest)))
        .collect();
    Ok(admin
        .list_offsets(&specs, false)
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

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("order-demo: {e:#}");
            std::process::exit(1);
        }
    }
}

fn step(text: &str) {
    eprintln!("\n==> {text}");
}

async fn run(args: Args) -> Result<bool> {
    let started = Instant::now();
    let consumer_bin = sibling("order-consumer")?;
    let producer_bin = sibling("order-producer")?;
    let root = gregor_testkit::workspace_root();

    step("Kafka and the schema registry");
    let kafka = gregor_testkit::Kafka::shared()
        .await
        .context("starting Kafka")?;
    let registry = gregor_testkit::SchemaRegistry::shared()
        .await
        .context("starting the schema registry")?;
    eprintln!(
        "bootstrap.servers={}  schema registry {}",
        kafka.bootstrap(),
        registry.url()
    );
    let config = ClientConfig::new().set("bootstrap.servers", kafka.bootstrap())?;
    let admin = Admin::connect(&config).await?;

    step("topics of deployments/topics.yaml");
    let manifest: Manifest = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("deployments/topics.yaml"))
            .context("reading deployments/topics.yaml")?,
    )?;
    let brokers = i16::try_from(admin.describe_cluster().await?.brokers.len())
        .unwrap_or(1)
        .max(1);
    for t in &manifest.topics {
        let rf = t.replication.min(brokers);
        match admin
            .create_topics(&[NewTopic::new(&t.name, t.partitions, rf)])
            .await
        {
            Ok(()) => eprintln!(
                "created {} ({} partitions, replication {rf})",
                t.name, t.partitions
            ),
            Err(e) if e.code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {
                eprintln!("exists  {}", t.name)
            }
            Err(e) => return Err(e.into()),
        }
    }
    let names: Vec<&str> = manifest.topics.iter().map(|t| t.name.as_str()).collect();
    admin
        .wait_for_leaders(&names, Duration::from_secs(30))
        .await?;
    let source: Vec<&TopicSpec> = manifest
        .topics
        .iter()
        .filter(|t| {
            ["created", "updated", "cancelled"]
                .iter()
                .any(|s| t.name.ends_with(&format!(".{s}")))
        })
        .collect();
    let dlq = manifest
        .topics
        .iter()
        .find(|t| t.name.ends_with(".dlq"))
        .map(|t| t.name.clone())
        .context("the manifest has no .dlq topic")?;
    let before = end_offsets(&admin, &manifest.topics).await?;

    step(&format!(
        "group {}: start from the current end of every topic",
        args.group
    ));
    let group_config = config.clone().set("group.id", args.group.as_str())?;
    let probe = Consumer::connect(&group_config).await?;
    let ends = per_partition_ends(&admin, &source).await?;
    let offsets: Vec<(&str, i32, i64)> = ends
        .iter()
        .map(|(tp, o)| (tp.topic.as_str(), tp.partition, *o))
        .collect();
    let mut committer = Consumer::connect(&group_config).await?;
    committer.commit_offsets(&offsets).await.context(
        "committing the start offsets (is another member of the group running? stop it)",
    )?;
    drop(committer);

    step("order-consumer");
    let codecs = root.join("apps/order-consumer/demo/codecs.yaml");
    let log_level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let mut consumer = tokio::process::Command::new(&consumer_bin)
        .args([
            "-b",
            kafka.bootstrap(),
            "--group",
            &args.group,
            "--metrics-port",
            "0",
            "--json",
        ])
        .args([
            "--retry-backoff-ms",
            "200",
            "--schema-registry-url",
            registry.url(),
        ])
        .arg("--codecs")
        .arg(&codecs)
        .env("RUST_LOG", &log_level)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", consumer_bin.display()))?;

    step(&format!(
        "order-producer: {} orders, 2 invalid JSON, 1 unknown schema id, 3 transient failures, 2 filtered",
        args.count
    ));
    let produced = tokio::process::Command::new(&producer_bin)
        .args([
            "-b",
            kafka.bootstrap(),
            "--count",
            &args.count.to_string(),
            "--no-metrics",
            "--json",
        ])
        .args([
            "--poison-json",
            "2",
            "--poison-schema",
            "1",
            "--transient",
            "3",
            "--unrouted",
            "2",
        ])
        .args(["--schema-registry-url", registry.url()])
        .arg("--codecs")
        .arg(&codecs)
        .env("RUST_LOG", &log_level)
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running order-producer")?;
    if !produced.status.success() {
        bail!("order-producer failed ({})", produced.status);
    }
    let p: serde_json::Value = last_json(&produced.stdout).context("order-producer's summary")?;

    step("waiting until the group has committed every record");
    let want = per_partition_ends(&admin, &source).await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let tps: Vec<TopicPartition> = want.iter().map(|(tp, _)| tp.clone()).collect();
        let committed = probe.committed(&tps).await?;
        let behind: i64 = want
            .iter()
            .zip(&committed)
            .map(|((_, end), (_, c))| (end - c.unwrap_or(0)).max(0))
            .sum();
        if behind == 0 {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("order-demo: {behind} records still uncommitted after 90 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    step("stopping order-consumer (SIGTERM: finish, commit, leave the group)");
    let pid = consumer.id().context("consumer pid")?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    let mut out = Vec::new();
    if let Some(mut stdout) = consumer.stdout.take() {
        stdout.read_to_end(&mut out).await?;
    }
    let exit = tokio::time::timeout(Duration::from_secs(40), consumer.wait()).await??;
    if !exit.success() {
        bail!("order-consumer exited with {exit}");
    }
    let c: serde_json::Value = last_json(&out).context("order-consumer's summary")?;
    let after = end_offsets(&admin, &manifest.topics).await?;

    Ok(summary(&p, &c, &before, &after, &dlq, started.elapsed()))
}

fn last_json(bytes: &[u8]) -> Result<serde_json::Value> {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line")?;
    Ok(serde_json::from_str(line)?)
}

fn summary(
    p: &serde_json::Value,
    c: &serde_json::Value,
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
    dlq: &str,
    took: Duration,
) -> bool {
    let n = |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap_or(-1);
    let mut ok = true;
    let mut check = |what: String, good: bool| {
        eprintln!("  [{}] {what}", if good { "ok" } else { "FAIL" });
        ok &= good;
    };
    println!("\n==> summary ({:.1} s)", took.as_secs_f64());
    println!("{:<32} {:>10} {:>10}", "topic", "produced", "broker");
    for (topic, end) in after {
        let delta = end - before.get(topic).copied().unwrap_or(0);
        let sent = if topic == dlq {
            n(c, "dead_lettered")
        } else {
            p["per_topic"][topic].as_i64().unwrap_or(0)
        };
        println!("{topic:<32} {sent:>10} {delta:>10}");
        check(
            format!("{topic}: {sent} sent, the broker's offsets moved by {delta}"),
            sent == delta,
        );
    }
    let produced = n(p, "acked");
    let (processed, dead, filtered) = (n(c, "processed"), n(c, "dead_lettered"), n(c, "filtered"));
    let (skipped, duplicates) = (n(c, "skipped"), n(c, "duplicates"));
    println!(
        "\nproduced {produced} = processed {processed} + dead-lettered {dead} + filtered {filtered}{}",
        if skipped + duplicates > 0 {
            format!(" + skipped {skipped} + duplicates {duplicates}")
        } else {
            String::new()
        }
    );
    println!(
        "retries {} (transient orders {} x 2), decode errors {}, commits {}, lag at the end {}",
        n(c, "retries"),
        n(p, "transient"),
        n(c, "decode_errors"),
        n(c, "commits"),
        n(c, "lag")
    );
    println!("by type: {}", c["by_type"]);
    check(
        format!(
            "produced = processed + dead-lettered + filtered ({produced} = {})",
            processed + dead + filtered + skipped + duplicates
        ),
        produced == processed + dead + filtered + skipped + duplicates,
    );
    check(
        format!("the consumer saw every record ({})", n(c, "records")),
        n(c, "records") == produced,
    );
    let poison = n(p, "poison_json") + n(p, "poison_schema");
    check(
        format!("poison records dead-lettered ({dead} of {poison})"),
        dead == poison,
    );
    check(
        format!("filtered = unrouted events ({filtered})"),
        filtered == n(p, "unrouted"),
    );
    check(
        format!(
            "transient failures recovered after 2 retries each ({} retries)",
            n(c, "retries")
        ),
        n(c, "retries") == 2 * n(p, "transient"),
    );
    println!("\n{}", if ok { "demo passed" } else { "demo FAILED" });
    ok
}
