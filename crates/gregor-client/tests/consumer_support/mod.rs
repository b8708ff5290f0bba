//! Shared by the consumer tests: a real broker, topics, records produced through rskafka (a
//! client gregor did not write), and consumer configs with short group timeouts.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_client::{Admin, ClientConfig, NewTopic};
use gregor_testkit::{Kafka, rskafka_client};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record as RsRecord;

pub async fn bootstrap() -> String {
    Kafka::shared()
        .await
        .expect("a real Kafka (gregor-testkit)")
        .bootstrap()
        .to_owned()
}

pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = Admin::connect(
        &ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .unwrap(),
    )
    .await
    .unwrap();
    let mut t = NewTopic::new(topic, partitions, 1);
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    admin.create_topics(&[t]).await.unwrap();
}

/// Consumer config: short session so tests that wait for a member to vanish stay short.
pub fn config(bootstrap: &str, group: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("group.id", group)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("session.timeout.ms", "6000")
        .unwrap()
        .set("heartbeat.interval.ms", "500")
        .unwrap()
        .set("max.poll.interval.ms", "30000")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap()
}

/// Produces `per_partition` records to each of `partitions` partitions: key `p-i`, value
/// `"<partition>:<i>"` padded to `size` bytes, timestamp `ts_ms + i` when given.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    size: usize,
    ts_ms: Option<i64>,
) {
    let client = rskafka_client(bootstrap, Duration::from_secs(30))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for p in 0..partitions {
        let client = std::sync::Arc::clone(&client);
        let topic = topic.to_owned();
        tasks.push(tokio::spawn(async move {
            let pc = client
                .partition_client(&topic, p, UnknownTopicHandling::Retry)
                .await
                .unwrap();
            let mut i = 0usize;
            while i < per_partition {
                let end = (i + 2000).min(per_partition);
                let batch: Vec<RsRecord> = (i..end)
                    .map(|n| {
                        let mut value = format!("{p}:{n}").into_bytes();
                        if value.len() < size {
                            value.resize(size, b'.');
                        }
                        RsRecord {
                            key: Some(format!("{p}-{n}").into_bytes()),
                            value: Some(value),
                            headers: BTreeMap::new(),
                            timestamp: Utc
                                .timestamp_millis_opt(ts_ms.map_or_else(
                                    || Utc::now().timestamp_millis(),
                                    |t| t + n as i64,
                                ))
                                .unwrap(),
                        }
                    })
                    .collect();
                pc.produce(batch, Compression::NoCompression).await.unwrap();
                i = end;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Parses a value written by [`produce`] back to (partition, index).
pub fn parse_value(v: &[u8]) -> (i32, usize) {
    let s = String::from_utf8_lossy(v);
    let s = s.trim_end_matches('.');
    let (p, n) = s.split_once(':').expect("a value written by produce()");
    (p.parse().unwrap(), n.parse().unwrap())
}

/// `group-<random>`.
pub fn unique_group(prefix: &str) -> String {
    gregor_testkit::unique_topic(prefix)
}

/// What a running member last reported.
#[derive(Debug, Default, Clone)]
pub struct MemberState {
    pub assignment: Vec<gregor_client::TopicPartition>,
    pub records: Vec<(i32, i64)>,
    pub rebalances: u64,
    pub generation: Option<i32>,
    pub assignor: Option<String>,
}

/// A consumer polling in its own task, as an application would (a member's poll blocks while
/// the group rebalances, so members must not share a task).
pub struct Running {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<gregor_client::Consumer>,
    pub state: std::sync::Arc<std::sync::Mutex<MemberState>>,
}

impl Running {
    pub fn spawn(mut consumer: gregor_client::Consumer) -> Running {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = std::sync::Arc::new(std::sync::Mutex::new(MemberState::default()));
        let (s, st) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&state));
        let handle = tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                let batch = consumer
                    .poll(Duration::from_millis(100))
                    .await
                    .expect("poll");
                let mut st = st.lock().unwrap();
                st.records
                    .extend(batch.iter().map(|r| (r.partition, r.offset)));
                st.assignment = consumer.assignment();
                st.rebalances = consumer.stats().rebalances;
                st.generation = consumer.generation().map(|g| g.1);
                st.assignor = consumer.assignor().map(str::to_owned);
            }
            consumer
        });
        Running {
            stop,
            handle,
            state,
        }
    }

    pub fn snapshot(&self) -> MemberState {
        self.state.lock().unwrap().clone()
    }

    pub async fn stop(self) -> gregor_client::Consumer {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.handle.await.expect("member task")
    }
}

/// Waits until `done` holds over the members' states.
pub async fn settle(
    members: &[&Running],
    timeout: Duration,
    done: impl Fn(&[MemberState]) -> bool,
) {
    let start = std::time::Instant::now();
    loop {
        let states: Vec<MemberState> = members.iter().map(|m| m.snapshot()).collect();
        if done(&states) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "not settled within {timeout:?}: {:?}",
            states
                .iter()
                .map(|s| (&s.assignment, s.generation))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
