//! Three nodes, acks=all (the only acks rskafka sends), `kill -9` of a partition leader while
//! records stream in: every send that returned Ok is readable afterwards at the offset it
//! reported; sends in flight during the failover either succeed or return an error; sending
//! goes on through the new leader.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gregor_client::{ClientConfig, DeliveryFuture, Producer, ProducerRecord};
use gregor_testkit::{Cluster, create_topic, rskafka_client, unique_topic};
use rskafka::client::partition::UnknownTopicHandling;

const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_stream_loses_no_acknowledged_record() {
    let mut cluster = Cluster::three_nodes().await.expect("three-node cluster");
    let topic = unique_topic("prod-failover");
    create_topic(&cluster.bootstrap(), &topic, PARTITIONS, 3)
        .await
        .expect("topic with replication 3");

    let config = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .unwrap()
        .set("acks", "all")
        .unwrap()
        .set("linger.ms", "5")
        .unwrap()
        .set("request.timeout.ms", "10000")
        .unwrap()
        .set("delivery.timeout.ms", "60000")
        .unwrap()
        .set("retry.backoff.ms", "100")
        .unwrap();
    assert!(config.warnings().is_empty());
    let producer = Producer::connect(&config).await.expect("producer");

    // About 2,000 records a second, keyed over all three partitions.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let producer = producer.clone();
        let stop = Arc::clone(&stop);
        let topic: Arc<str> = Arc::from(topic.as_str());
        tokio::spawn(async move {
            let mut sent: Vec<(u64, Instant, gregor_client::Result<DeliveryFuture>)> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut i = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                for _ in 0..2 {
                    let record = ProducerRecord::new(Arc::clone(&topic), format!("value-{i}"))
                        .key(format!("key-{}", i % 60));
                    sent.push((i, Instant::now(), producer.enqueue(record).await));
                    i += 1;
                }
            }
            sent
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = cluster
        .leader(&topic, 0, Duration::from_secs(10))
        .await
        .expect("leader of partition 0");
    let killed_at = Instant::now();
    cluster.kill(leader).expect("kill -9 the leader");
    let new_leader = cluster
        .wait_new_leader(&topic, 0, leader, Duration::from_secs(60))
        .await
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    // Keep sending through the new leader for a while.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    let sent = sender.await.expect("sender task");

    let mut acked: Vec<(u64, gregor_client::RecordMetadata)> = Vec::new();
    let mut failed = 0_usize;
    let mut after_kill_on_0 = 0_usize;
    for (i, at, enqueued) in sent {
        let result = match enqueued {
            Ok(delivery) => delivery.await,
            Err(e) => Err(e),
        };
        match result {
            Ok(meta) => {
                if meta.partition == 0 && at > killed_at {
                    after_kill_on_0 += 1;
                }
                acked.push((i, meta));
            }
            // In flight during the failover: an error is allowed, silence is not.
            Err(e) => {
                failed += 1;
                eprintln!("record {i} failed: {e}");
            }
        }
    }
    let stats = producer.stats();
    producer.close().await.expect("close");
    eprintln!(
        "acknowledged {}, failed {failed}, retries {}, after the kill on partition 0: {after_kill_on_0}",
        acked.len(),
        stats.retries
    );
    assert!(acked.len() > 5_000, "too few acknowledged: {}", acked.len());
    assert!(
        after_kill_on_0 > 0,
        "nothing reached partition 0 after its leader died"
    );

    // Read every partition back from the surviving nodes.
    let survivors: Vec<String> = cluster
        .node_ids()
        .into_iter()
        .filter(|&n| n != leader)
        .map(|n| cluster.node_address(n).unwrap())
        .collect();
    let client = rskafka_client(&survivors.join(","), Duration::from_secs(30))
        .await
        .expect("rskafka client");
    let mut on_broker: HashMap<(i32, i64), String> = HashMap::new();
    for partition in 0..PARTITIONS {
        let pc = client
            .partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (records, high_watermark) = pc
                .fetch_records(offset, 1..10_000_000, 1_000)
                .await
                .expect("fetch");
            for r in records {
                let value = String::from_utf8(r.record.value.unwrap_or_default()).unwrap();
                on_broker.insert((partition, r.offset), value);
                offset = r.offset + 1;
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    let mut lost = Vec::new();
    for (i, meta) in &acked {
        match on_broker.get(&(meta.partition, meta.offset)) {
            Some(v) if *v == format!("value-{i}") => {}
            other => lost.push(format!(
                "record {i} acknowledged at {}/{} but the broker has {other:?}",
                meta.partition, meta.offset
            )),
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
