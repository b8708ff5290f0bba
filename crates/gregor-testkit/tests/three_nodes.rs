//! A three-node cluster (RF 3, min ISR 2): acknowledged records survive a leader's kill -9,
//! and every fault hook (kill, stop, pause, resume, restart) does what it says.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_testkit::{Cluster, NodeState, create_topic, rskafka_client, unique_topic};
use rskafka::chrono::Utc;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

fn record(i: usize) -> Record {
    Record {
        key: Some(format!("key-{i}").into_bytes()),
        value: Some(format!("value-{i}").into_bytes()),
        headers: BTreeMap::new(),
        timestamp: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_leader_kill_and_every_fault_hook_works() {
    let mut cluster = Cluster::three_nodes()
        .await
        .expect("a real three-node cluster");
    let bootstrap = cluster.bootstrap();
    let meta = cluster.metadata(&[]).await.unwrap();
    assert_eq!(meta.brokers, vec![1, 2, 3]);

    let topic = unique_topic("testkit-failover");
    create_topic(&bootstrap, &topic, 1, 3).await.unwrap();
    let partition = cluster.metadata(&[&topic]).await.unwrap();
    let p0 = partition.partition(&topic, 0).unwrap();
    assert_eq!(p0.replicas.len(), 3, "{p0:?}");

    let client = rskafka_client(&bootstrap, Duration::from_secs(60))
        .await
        .unwrap();
    let producer = Arc::new(
        client
            .partition_client(&topic, 0, UnknownTopicHandling::Retry)
            .await
            .unwrap(),
    );

    // rskafka always produces with acks=-1 (all in-sync replicas).
    let mut acked: BTreeMap<i64, usize> = BTreeMap::new();
    let mut failed = 0usize;
    let mut next = 0usize;
    let mut send = async |n: usize, acked: &mut BTreeMap<i64, usize>, failed: &mut usize| {
        for _ in 0..n {
            let batch: Vec<usize> = (next..next + 10).collect();
            next += 10;
            match producer
                .produce(
                    batch.iter().map(|&i| record(i)).collect(),
                    Compression::NoCompression,
                )
                .await
            {
                Ok(offsets) => acked.extend(offsets.into_iter().zip(batch)),
                Err(_) => *failed += batch.len(),
            }
        }
    };
    send(50, &mut acked, &mut failed).await;
    assert_eq!(acked.len(), 500, "no fault yet, every send acknowledged");

    let leader = cluster
        .leader(&topic, 0, Duration::from_secs(10))
        .await
        .unwrap();
    cluster.kill(leader).unwrap();
    assert_eq!(cluster.state(leader).unwrap(), NodeState::Down);
    // Keep producing through the failover: rskafka retries until the new leader answers.
    send(50, &mut acked, &mut failed).await;
    let new_leader = cluster
        .wait_new_leader(&topic, 0, leader, Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(new_leader, leader);
    send(20, &mut acked, &mut failed).await;
    assert!(
        acked.len() >= 700,
        "the cluster kept accepting writes: {} acked",
        acked.len()
    );

    // Every acknowledged record is readable from the new leader at its offset.
    let reader = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let last = *acked.keys().last().unwrap();
    let mut read: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    let mut offset = 0;
    while offset <= last {
        let (records, _hw) = reader
            .fetch_records(offset, 1..1_000_000, 1_000)
            .await
            .unwrap();
        assert!(
            !records.is_empty(),
            "nothing at offset {offset} below {last}"
        );
        for r in records {
            offset = r.offset + 1;
            read.insert(r.offset, r.record.value.unwrap_or_default());
        }
    }
    for (offset, i) in &acked {
        assert_eq!(
            read.get(offset).map(Vec::as_slice),
            Some(format!("value-{i}").as_bytes()),
            "acknowledged record {i} at offset {offset} lost after killing leader {leader}"
        );
    }
    eprintln!(
        "failover: leader {leader} killed, new leader {new_leader}, {} acknowledged, {failed} sends failed, 0 lost",
        acked.len()
    );

    // restart: the killed node rejoins and catches up into the ISR.
    cluster.restart(leader).await.unwrap();
    assert_eq!(cluster.metadata(&[]).await.unwrap().brokers, vec![1, 2, 3]);
    wait_isr(&cluster, &topic, 3).await;

    // stop (SIGTERM, controlled shutdown): the broker leaves the cluster cleanly.
    let victim = cluster
        .node_ids()
        .into_iter()
        .find(|&n| n != leader)
        .unwrap();
    cluster.stop(victim).await.unwrap();
    assert_eq!(cluster.state(victim).unwrap(), NodeState::Down);
    let live = cluster.metadata(&[]).await.unwrap().brokers;
    assert!(
        !live.contains(&victim),
        "{victim} still listed after SIGTERM: {live:?}"
    );
    cluster.restart(victim).await.unwrap();
    wait_isr(&cluster, &topic, 3).await;

    // pause (SIGSTOP): the node stops answering; resume brings it back.
    cluster.pause(victim).unwrap();
    assert_eq!(cluster.state(victim).unwrap(), NodeState::Paused);
    let addr = cluster.node_address(victim).unwrap();
    let frozen =
        tokio::time::timeout(Duration::from_secs(3), gregor_testkit::metadata(&addr, &[])).await;
    assert!(
        !matches!(frozen, Ok(Ok(_))),
        "a paused broker answered metadata"
    );
    cluster.resume(victim).unwrap();
    let answered = gregor_testkit::metadata(&addr, &[]).await.unwrap();
    assert!(answered.brokers.contains(&victim));

    assert!(matches!(
        cluster.kill(42),
        Err(gregor_testkit::Error::UnknownNode { node_id: 42, .. })
    ));
}

async fn wait_isr(cluster: &Cluster, topic: &str, want: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let meta = cluster.metadata(&[topic]).await.unwrap();
        let isr = meta.partition(topic, 0).unwrap().isr.len();
        if isr == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ISR of {topic}/0 is {isr}, not {want}, after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
