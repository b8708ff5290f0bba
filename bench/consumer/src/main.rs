//! gregor's consumer against rust-rdkafka's StreamConsumer (librdkafka) on the same broker.
//!
//! ```text
//! CARGO_TARGET_DIR=target/h-consumer-bench cargo run --release -- compare --runs 3
//! CARGO_TARGET_DIR=target/h-consumer-bench cargo run --release -- failover
//! CARGO_TARGET_DIR=target/h-consumer-bench cargo run --release -- cooperative
//! ```
//!
//! `compare` writes 1,000,000 records of 100 bytes to a 6-partition topic (Kafka's
//! ProducerPerformance), then consumes them all in a group of one, alternating gregor and
//! librdkafka run by run, each in its own process (the peer contract of bench/README.md: one
//! JSON line per run; CPU seconds are the process's user+sys from /proc/self/stat). Both get the
//! same fetch settings: fetch.min.bytes 1, fetch.max.bytes 50 MiB, fetch.max.wait.ms 500,
//! max.partition.fetch.bytes 1 MiB, no auto-commit.
//!
//! `failover`: three member processes read a throttled backlog; one is killed with SIGKILL;
//! reported is the time until every one of its partitions delivered a record to a survivor.
//! `cooperative`: two members read, a third joins (cooperative-sticky); reported is the longest
//! gap in delivery on the members that keep partitions, and when the newcomer's first record came.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use gregor_client::{Admin, ClientConfig as GregorConfig, Consumer, NewTopic, OffsetSpec};
use gregor_testkit::tools::{self, class};
use rdkafka::Message;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use tokio::io::{AsyncBufReadExt, BufReader};

const FETCH: &[(&str, &str)] = &[
    ("fetch.min.bytes", "1"),
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "1048576"),
];

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// user + sys CPU seconds of this process (all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0 // CLK_TCK is 100 on Linux
}

fn gregor_config(bootstrap: &str, group: &str) -> Result<GregorConfig> {
    let mut c = GregorConfig::new()
        .set("bootstrap.servers", bootstrap)?
        .set("group.id", group)?
        .set("auto.offset.reset", "earliest")?
        .set("enable.auto.commit", "false")?
        .set("fetch.max.wait.ms", "500")?;
    for (k, v) in FETCH {
        c = c.set(k, *v)?;
    }
    Ok(c)
}

async fn consume_gregor(
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: u64,
) -> Result<(u64, u64, f64)> {
    let mut consumer = Consumer::connect(&gregor_config(bootstrap, group)?).await?;
    consumer.subscribe(&[topic])?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut start = None;
    while n < records {
        let r = consumer.recv().await?;
        start.get_or_insert_with(Instant::now);
        n += 1;
        bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    consumer.close().await?;
    Ok((n, bytes, secs))
}

async fn consume_rdkafka(
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: u64,
) -> Result<(u64, u64, f64)> {
    let mut cfg = rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "500");
    for (k, v) in FETCH {
        cfg.set(*k, *v);
    }
    let consumer: StreamConsumer = cfg.create()?;
    consumer.subscribe(&[topic])?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut start = None;
    while n < records {
        let m = consumer.recv().await?;
        start.get_or_insert_with(Instant::now);
        n += 1;
        bytes += m.payload().map_or(0, |v| v.len() as u64);
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok((n, bytes, secs))
}

async fn consume(args: &[String]) -> Result<()> {
    let client = arg(args, "--client").context("--client")?;
    let bootstrap = arg(args, "--bootstrap").context("--bootstrap")?;
    let topic = arg(args, "--topic").context("--topic")?;
    let group = arg(args, "--group").context("--group")?;
    let records: u64 = arg(args, "--records").context("--records")?.parse()?;
    let (n, bytes, secs) = match client.as_str() {
        "gregor" => consume_gregor(&bootstrap, &topic, &group, records).await?,
        "rdkafka" => consume_rdkafka(&bootstrap, &topic, &group, records).await?,
        other => bail!("unknown client {other}"),
    };
    println!(
        "{}",
        serde_json::json!({
            "client": if client == "rdkafka" { "librdkafka" } else { "gregor" },
            "mode": "consume", "records": n, "bytes": bytes, "seconds": secs,
            "cpu_seconds": cpu_seconds(), "errors": 0
        })
    );
    Ok(())
}

async fn admin(bootstrap: &str) -> Result<Admin> {
    Ok(Admin::connect(&GregorConfig::new().set("bootstrap.servers", bootstrap)?).await?)
}

/// A topic with `records` records of `size` bytes over `partitions` partitions, written by
/// Kafka's own ProducerPerformance.
async fn prepare(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    size: usize,
) -> Result<()> {
    let admin = admin(bootstrap).await?;
    admin
        .create_topics(&[NewTopic::new(topic, partitions, 1)])
        .await?;
    let n = records.to_string();
    let s = size.to_string();
    let props = format!("bootstrap.servers={bootstrap}");
    tools::run(
        class::PRODUCER_PERF,
        &[
            "--topic",
            topic,
            "--num-records",
            &n,
            "--record-size",
            &s,
            "--throughput",
            "-1",
            "--producer-props",
            &props,
            "acks=1",
            "linger.ms=5",
            "batch.size=262144",
        ],
        None,
        Duration::from_secs(600),
    )
    .await?;
    let specs: Vec<(&str, i32, OffsetSpec)> = (0..partitions)
        .map(|p| (topic, p, OffsetSpec::Latest))
        .collect();
    let total: i64 = admin
        .list_offsets(&specs, false)
        .await?
        .iter()
        .filter_map(|l| l.offset)
        .sum();
    if total != records as i64 {
        bail!("{topic} holds {total} records, not {records}");
    }
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

async fn compare(args: &[String]) -> Result<()> {
    let runs: usize = arg(args, "--runs").map_or(Ok(3), |r| r.parse())?;
    let records: u64 = arg(args, "--records").map_or(Ok(1_000_000), |r| r.parse())?;
    let kafka = gregor_testkit::Kafka::shared().await?;
    let bootstrap = kafka.bootstrap().to_owned();
    let topic = gregor_testkit::unique_topic("bench-consume");
    eprintln!("preparing {records} x 100 B on {topic} (6 partitions) at {bootstrap}");
    prepare(&bootstrap, &topic, 6, records, 100).await?;
    let mut results: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let n = records.to_string();
    for run in 0..runs {
        let order = if run % 2 == 0 {
            ["gregor", "rdkafka"]
        } else {
            ["rdkafka", "gregor"]
        };
        for client in order {
            let group = gregor_testkit::unique_topic("bench-group");
            let v = child(&[
                "consume",
                "--client",
                client,
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--group",
                &group,
                "--records",
                &n,
            ])
            .await?;
            let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
            let bytes = v["bytes"].as_f64().unwrap_or(0.0);
            let recs = v["records"].as_f64().unwrap_or(0.0);
            let cpu = v["cpu_seconds"].as_f64().unwrap_or(f64::NAN);
            println!("{v}");
            results
                .entry(v["client"].as_str().unwrap_or(client).to_owned())
                .or_default()
                .push((recs / secs, bytes / secs / 1e6, cpu));
        }
    }
    println!(
        "\n| client | records/s (median of {runs}) | MB/s (values) | CPU s |\n| --- | --- | --- | --- |"
    );
    let mut rate = BTreeMap::new();
    for (client, rs) in &results {
        let r = median(rs.iter().map(|x| x.0).collect());
        let mb = median(rs.iter().map(|x| x.1).collect());
        let cpu = median(rs.iter().map(|x| x.2).collect());
        rate.insert(client.clone(), r);
        println!("| {client} | {r:.0} | {mb:.1} | {cpu:.2} |");
    }
    if let (Some(g), Some(l)) = (rate.get("gregor"), rate.get("librdkafka")) {
        println!("\ngregor / librdkafka = {:.2}x", g / l);
    }
    Ok(())
}

/// A throttled member for `failover`: prints `ASSIGNED <ms> p,p` on each assignment change and
/// `FIRST <partition> <ms>` for the first record of each newly assigned partition.
async fn member(args: &[String]) -> Result<()> {
    let bootstrap = arg(args, "--bootstrap").context("--bootstrap")?;
    let topic = arg(args, "--topic").context("--topic")?;
    let group = arg(args, "--group").context("--group")?;
    let cfg = gregor_config(&bootstrap, &group)?
        .set("session.timeout.ms", "6000")?
        .set("heartbeat.interval.ms", "500")?
        .set("max.poll.records", "50")?
        .set("enable.auto.commit", "true")?
        .set("auto.commit.interval.ms", "200")?;
    let mut consumer = Consumer::connect(&cfg).await?;
    consumer.subscribe(&[&topic])?;
    let mut assignment = Vec::new();
    let mut fresh: BTreeSet<i32> = BTreeSet::new();
    loop {
        let batch = consumer.poll(Duration::from_millis(100)).await?;
        let now = consumer.assignment();
        if now != assignment {
            let list: Vec<String> = now.iter().map(|p| p.partition.to_string()).collect();
            let old: BTreeSet<i32> = assignment.iter().map(|p| p.partition).collect();
            fresh.extend(now.iter().map(|p| p.partition).filter(|p| !old.contains(p)));
            println!("ASSIGNED {} {}", now_ms(), list.join(","));
            assignment = now;
        }
        for r in &batch {
            if fresh.remove(&r.partition) {
                println!("FIRST {} {}", r.partition, now_ms());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn failover(_args: &[String]) -> Result<()> {
    let kafka = gregor_testkit::Kafka::shared().await?;
    let bootstrap = kafka.bootstrap().to_owned();
    let topic = gregor_testkit::unique_topic("bench-failover");
    prepare(&bootstrap, &topic, 6, 300_000, 100).await?;
    let group = gregor_testkit::unique_topic("bench-failover-group");
    let exe = std::env::current_exe()?;
    let state: Arc<Mutex<Vec<(Vec<i32>, BTreeMap<i32, u128>)>>> =
        Arc::new(Mutex::new(vec![(vec![], BTreeMap::new()); 3]));
    let mut children = Vec::new();
    for i in 0..3 {
        let mut c = tokio::process::Command::new(&exe)
            .args([
                "member",
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--group",
                &group,
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = c.stdout.take().context("stdout")?;
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let f: Vec<&str> = l.split_whitespace().collect();
                let mut s = st.lock().unwrap();
                match f.as_slice() {
                    ["ASSIGNED", _, ps] => {
                        s[i].0 = ps.split(',').filter_map(|p| p.parse().ok()).collect()
                    }
                    ["ASSIGNED", _] => s[i].0.clear(),
                    ["FIRST", p, ms] => {
                        if let (Ok(p), Ok(ms)) = (p.parse(), ms.parse()) {
                            s[i].1.insert(p, ms);
                        }
                    }
                    _ => {}
                }
            }
        });
        children.push(c);
    }
    let start = Instant::now();
    while !state.lock().unwrap().iter().all(|s| s.0.len() == 2) {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("members did not settle: {:?}", state.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim: Vec<i32> = state.lock().unwrap()[0].0.clone();
    let killed_at = now_ms();
    children[0].start_kill()?; // SIGKILL
    let _ = children[0].wait().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let resumed = loop {
        let s = state.lock().unwrap().clone();
        let firsts: Vec<u128> = victim
            .iter()
            .filter_map(|p| {
                s[1..]
                    .iter()
                    .filter_map(|m| m.1.get(p))
                    .filter(|&&t| t > killed_at)
                    .min()
                    .copied()
            })
            .collect();
        if firsts.len() == victim.len() {
            break firsts.into_iter().max().unwrap_or(killed_at);
        }
        if Instant::now() > deadline {
            bail!("partitions {victim:?} not consumed again within 60 s: {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "{}",
        serde_json::json!({"client": "gregor", "mode": "failover", "session_timeout_ms": 6000,
            "partitions": victim, "kill_to_consumed_again_ms": resumed - killed_at})
    );
    Ok(())
}

async fn cooperative(_args: &[String]) -> Result<()> {
    let kafka = gregor_testkit::Kafka::shared().await?;
    let bootstrap = kafka.bootstrap().to_owned();
    let topic = gregor_testkit::unique_topic("bench-coop");
    prepare(&bootstrap, &topic, 6, 300_000, 100).await?;
    let group = gregor_testkit::unique_topic("bench-coop-group");
    let cfg = gregor_config(&bootstrap, &group)?
        .set("partition.assignment.strategy", "cooperative-sticky")?
        .set("session.timeout.ms", "6000")?
        .set("heartbeat.interval.ms", "500")?
        .set("max.poll.records", "50")?;
    type Log = Arc<Mutex<Vec<(Instant, usize)>>>;
    let spawn = |log: Log| {
        let cfg = cfg.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut c = Consumer::connect(&cfg).await?;
            c.subscribe(&[&topic])?;
            loop {
                let batch = c.poll(Duration::from_millis(100)).await?;
                if !batch.is_empty() {
                    log.lock()
                        .unwrap()
                        .push((Instant::now(), c.assignment().len()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            #[allow(unreachable_code)]
            Ok::<(), anyhow::Error>(())
        })
    };
    let (la, lb, lc): (Log, Log, Log) = Default::default();
    let a = spawn(Arc::clone(&la));
    let b = spawn(Arc::clone(&lb));
    let settled = |l: &Log, n: usize| l.lock().unwrap().last().is_some_and(|x| x.1 == n);
    let start = Instant::now();
    while !(settled(&la, 3) && settled(&lb, 3)) {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("two members did not settle");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let joined = Instant::now();
    let c = spawn(Arc::clone(&lc));
    while !(settled(&la, 2) && settled(&lb, 2) && settled(&lc, 2)) {
        if joined.elapsed() > Duration::from_secs(60) {
            bail!("three members did not settle");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gap = |l: &Log| {
        let l = l.lock().unwrap();
        l.windows(2)
            .filter(|w| w[1].0 >= joined)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default()
    };
    let c_first = lc
        .lock()
        .unwrap()
        .first()
        .map(|x| x.0 - joined)
        .unwrap_or_default();
    for h in [a, b, c] {
        h.abort();
    }
    println!(
        "{}",
        serde_json::json!({"client": "gregor", "mode": "cooperative",
            "longest_delivery_gap_kept_members_ms": gap(&la).max(gap(&lb)).as_millis(),
            "newcomer_first_record_after_ms": c_first.as_millis()})
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("consume") => consume(&args).await,
        Some("compare") => compare(&args).await,
        Some("member") => member(&args).await,
        Some("failover") => failover(&args).await,
        Some("cooperative") => cooperative(&args).await,
        _ => bail!(
            "usage: gregor-consumer-bench compare [--runs N] [--records N] | failover | cooperative | consume --client gregor|rdkafka ..."
        ),
    }
}
