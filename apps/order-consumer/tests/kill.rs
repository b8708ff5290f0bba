//! kill -9 the order-consumer mid-stream and start it again: every order is processed at least
//! once, none is lost (the real binary, the real broker).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor::client::{ClientConfig, Producer, ProducerRecord};
use gregor::event::{Item, Money, OrderEvent, OrderStatus, TypedEvent};
use gregor_testkit::{Kafka, create_topic, unique_topic};
use tokio::io::{AsyncBufReadExt, BufReader};

const N: usize = 12_000;

fn order(i: usize) -> OrderEvent {
    let price = Money::from_cents(999).unwrap();
    OrderEvent {
        order_id: format!("o-{i}"),
        user_id: format!("u-{}", i % 40),
        status: OrderStatus::Created,
        amount: price,
        items: vec![Item {
            product_id: "p-1".into(),
            quantity: 1,
            price,
        }],
        created_at: gregor::event::time::now(),
    }
}

/// Starts the consumer; every "order created" debug line adds its order number to `seen`.
fn start(
    bootstrap: &str,
    prefix: &str,
    group: &str,
    seen: &Arc<Mutex<Vec<usize>>>,
) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_order-consumer"))
        .args([
            "-b",
            bootstrap,
            "--topic-prefix",
            prefix,
            "--group",
            group,
            "--no-metrics",
        ])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "max.poll.records=100",
        ])
        .env("RUST_LOG", "order_consumer=debug,warn")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("order-consumer starts");
    let stderr = child.stderr.take().expect("stderr");
    let seen = Arc::clone(seen);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.contains("order created") {
                continue;
            }
            let n = line
                .split("o-")
                .nth(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|d| d.parse().ok());
            if let Some(n) = n {
                seen.lock().unwrap().push(n);
            }
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_and_restart_loses_nothing() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let prefix = unique_topic("kill").replace('-', "_") + ".orders";
    for (suffix, partitions) in [("created", 3), ("updated", 1), ("cancelled", 1), ("dlq", 1)] {
        create_topic(
            kafka.bootstrap(),
            &format!("{prefix}.{suffix}"),
            partitions,
            1,
        )
        .await
        .unwrap();
    }
    let config = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap();
    let producer = Producer::connect(&config).await.unwrap();
    let topic = format!("{prefix}.created");
    let records: Vec<ProducerRecord> = (0..N)
        .map(|i| {
            let o = order(i);
            let e = o.to_event("test").unwrap();
            ProducerRecord::new(topic.as_str(), e.to_json().unwrap().into_bytes())
                .key(o.user_id.clone())
                .header("event-type", "order.created")
        })
        .collect();
    for r in producer.send_batch(records).await {
        r.unwrap();
    }
    producer.close().await.unwrap();

    let group = unique_topic("kill-group");
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let mut first = start(kafka.bootstrap(), &prefix, &group, &seen);
    // Kill once some records are committed (the worker commits every 500 ms), before the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_seen = None;
    loop {
        let n = seen.lock().unwrap().len();
        if n > 0 && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        let long_enough = first_seen.is_some_and(|t| t.elapsed() >= Duration::from_millis(1200));
        if (n >= N / 10 && long_enough) || n >= N * 9 / 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the consumer made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.start_kill().unwrap(); // SIGKILL: no commit, no LeaveGroup
    first.wait().await.unwrap();
    let at_kill = seen.lock().unwrap().len();
    let probe =
        gregor::client::Consumer::connect(&config.clone().set("group.id", group.as_str()).unwrap())
            .await
            .unwrap();
    let tps: Vec<gregor::client::TopicPartition> = (0..3)
        .map(|p| gregor::client::TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed: i64 = probe
        .committed(&tps)
        .await
        .unwrap()
        .iter()
        .map(|(_, o)| o.unwrap_or(0))
        .sum();
    eprintln!("at the kill: {at_kill} processed lines read, {committed} committed");
    assert!(
        i64::try_from(at_kill).unwrap() >= committed,
        "nothing is committed before it is processed"
    );
    assert!(at_kill < N, "killed before the end ({at_kill} of {N})");

    let mut second = start(kafka.bootstrap(), &prefix, &group, &seen);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let distinct: BTreeSet<usize> = seen.lock().unwrap().iter().copied().collect();
        if distinct.len() == N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart only {} of {N} orders were processed",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = seen.lock().unwrap().len();
    eprintln!(
        "kill -9 after {at_kill} orders: {} processed twice (uncommitted at the kill)",
        total - N
    );
    assert!(
        total - N <= at_kill,
        "only records uncommitted at the kill are processed again"
    );
    second.start_kill().unwrap();
    let _ = second.wait().await;
    let distinct: BTreeSet<usize> = seen.lock().unwrap().iter().copied().collect();
    assert_eq!(distinct, (0..N).collect::<BTreeSet<_>>());
}
