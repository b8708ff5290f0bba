//! A gregor consumer and Kafka's Java consumer (VerifiableConsumer from the kafka-tools jars)
//! in one group: they split the partitions under range and under cooperative-sticky, whoever
//! leads, and between them read every record.

mod consumer_support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_support::{Running, bootstrap, config, create_topic, produce, unique_group};
use gregor_client::Consumer;
use gregor_testkit::tools::class;
use gregor_testkit::{Distribution, state_root, unique_topic};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Default)]
struct JavaSeen {
    assignment: BTreeSet<i32>,
    /// (partition, min offset, max offset) of each batch it reported.
    consumed: Vec<(i32, i64, i64)>,
}

/// Starts VerifiableConsumer with `assignor` (a Java class name) and follows its JSON events.
async fn java_consumer(
    bootstrap: &str,
    topic: &str,
    group: &str,
    assignor: &str,
) -> (tokio::process::Child, Arc<Mutex<JavaSeen>>) {
    let dist = tokio::task::spawn_blocking(Distribution::ensure)
        .await
        .unwrap()
        .unwrap();
    let logs = state_root().join("tools");
    std::fs::create_dir_all(&logs).unwrap();
    let mut cmd =
        tokio::process::Command::from(dist.java(class::VERIFIABLE_CONSUMER, &logs, "256m"));
    cmd.args([
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--group-id",
        group,
        "--group-protocol",
        "classic",
        "--assignment-strategy",
        assignor,
        "--session-timeout",
        "6000",
        "--reset-policy",
        "earliest",
        "--verbose",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(JavaSeen::default()));
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let partitions = |v: &serde_json::Value| -> Vec<i32> {
                v["partitions"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p["partition"].as_i64())
                            .map(|p| p as i32)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut s = s.lock().unwrap();
            match v["name"].as_str() {
                Some("partitions_assigned") => s.assignment.extend(partitions(&v)),
                Some("partitions_revoked") => {
                    for p in partitions(&v) {
                        s.assignment.remove(&p);
                    }
                }
                Some("record_data") => {
                    if let (Some(p), Some(o)) = (v["partition"].as_i64(), v["offset"].as_i64()) {
                        s.consumed.push((p as i32, o, o));
                    }
                }
                _ => {}
            }
        }
    });
    (child, seen)
}

async fn share_a_group(assignor: &str, java_class: &str, java_first: bool) {
    let bootstrap = bootstrap().await;
    let topic = unique_topic(&format!("java-{assignor}"));
    create_topic(&bootstrap, &topic, 6, &[]).await;
    produce(&bootstrap, &topic, 6, 100, 20, None).await;
    let group = unique_group("g-java");
    let cfg = config(&bootstrap, &group)
        .set("partition.assignment.strategy", assignor)
        .unwrap();

    let start_gregor = || async {
        let mut c = Consumer::connect(&cfg).await.unwrap();
        c.subscribe(&[&topic]).unwrap();
        Running::spawn(c)
    };
    let (gregor, (mut java, java_seen)) = if java_first {
        let j = java_consumer(&bootstrap, &topic, &group, java_class).await;
        tokio::time::sleep(Duration::from_secs(3)).await; // the Java member leads
        (start_gregor().await, j)
    } else {
        let g = start_gregor().await;
        tokio::time::sleep(Duration::from_secs(1)).await; // the gregor member leads
        (
            g,
            java_consumer(&bootstrap, &topic, &group, java_class).await,
        )
    };

    let start = Instant::now();
    loop {
        let ours: BTreeSet<i32> = gregor
            .snapshot()
            .assignment
            .iter()
            .map(|p| p.partition)
            .collect();
        let theirs = java_seen.lock().unwrap().assignment.clone();
        let read: BTreeSet<(i32, i64)> = gregor
            .snapshot()
            .records
            .into_iter()
            .chain(
                java_seen
                    .lock()
                    .unwrap()
                    .consumed
                    .iter()
                    .map(|(p, o, _)| (*p, *o)),
            )
            .collect();
        let split = ours.len() == 3 && theirs.len() == 3 && ours.is_disjoint(&theirs);
        if split && read.len() == 600 {
            assert_eq!(ours.union(&theirs).count(), 6);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{assignor}: gregor {ours:?}, java {theirs:?}, {} of 600 read",
            read.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gregor.snapshot().assignor.as_deref(), Some(assignor));
    gregor.stop().await.close().await.unwrap();
    java.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gregor_and_java_share_a_group_under_range_with_java_leading() {
    share_a_group(
        "range",
        "org.apache.kafka.clients.consumer.RangeAssignor",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gregor_and_java_share_a_group_under_cooperative_sticky_with_gregor_leading() {
    share_a_group(
        "cooperative-sticky",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        false,
    )
    .await;
}
