//! gregor's consumer group under membership changes, on a local broker. Throughput against the
//! peers is `bench/run.py`'s (`just bench`); these two measure what a throughput run cannot.
//!
//! ```text
//! cd bench && CARGO_TARGET_DIR=../target/h-consumer-bench cargo run --release -p gregor-consumer-bench -- failover
//! cd bench && CARGO_TARGET_DIR=../target/h-consumer-bench cargo run --release -p gregor-consumer-bench -- cooperative
//! ```
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
use gregor_bench_peer::arg;
use gregor_bench_peer::gregor::consumer_config as gregor_config;
use gregor_client::{Admin, ClientConfig as GregorConfig, Consumer, NewTopic, OffsetSpec};
use gregor_testkit::tools::{self, class};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the driver saw of one member: its assigned partitions, and when each newly assigned
/// partition delivered its first record (ms since the epoch).
type MemberView = (Vec<i32>, BTreeMap<i32, u128>);

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
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
    let state: Arc<Mutex<Vec<MemberView>>> =
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
        Some("member") => member(&args).await,
        Some("failover") => failover(&args).await,
        Some("cooperative") => cooperative(&args).await,
        _ => bail!(
            "usage: gregor-consumer-bench failover | cooperative (throughput against the peers: just bench)"
        ),
    }
}
