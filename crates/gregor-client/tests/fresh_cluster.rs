//! A cluster that has just started has no `__consumer_offsets` yet: FindCoordinator answers
//! COORDINATOR_NOT_AVAILABLE and the first OffsetCommit NOT_COORDINATOR until it is created and
//! loaded. A consumer's first commit on such a cluster must wait that out (bounded), as the Java
//! client does, instead of failing: `just demo` commits its start offsets exactly then on a
//! fresh machine.

use std::time::Duration;

use gregor_client::{ClientConfig, Consumer, TopicPartition};
use gregor_testkit::{Cluster, create_topic, unique_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_commit_on_a_fresh_cluster_waits_for_the_coordinator() {
    let cluster = Cluster::start(1).await.expect("a fresh one-node cluster");
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("fresh");
    create_topic(&bootstrap, &topic, 2, 1).await.expect("topic");
    let config = ClientConfig::new()
        .set("bootstrap.servers", bootstrap.as_str())
        .and_then(|c| c.set("group.id", "fresh-group"))
        .expect("config");
    let mut consumer = Consumer::connect(&config).await.expect("consumer");
    consumer
        .commit_offsets(&[(topic.as_str(), 0, 7), (topic.as_str(), 1, 3)])
        .await
        .expect("the first commit waits for the coordinator instead of failing");
    let committed = tokio::time::timeout(
        Duration::from_secs(30),
        consumer.committed(&[
            TopicPartition::new(topic.as_str(), 0),
            TopicPartition::new(topic.as_str(), 1),
        ]),
    )
    .await
    .expect("committed offsets in time")
    .expect("committed offsets");
    let by_partition: Vec<(i32, Option<i64>)> =
        committed.iter().map(|(tp, o)| (tp.partition, *o)).collect();
    assert_eq!(by_partition, [(0, Some(7)), (1, Some(3))]);
    consumer.close().await.expect("close");
}
