//! A consumer that subscribes the moment a topic is created. The broker's metadata may already
//! name a leader while the leader itself has not taken the partition up yet, so the
//! ListOffsets that resets the consumer's position (auto.offset.reset) can answer
//! NOT_LEADER_OR_FOLLOWER. That is a retriable moment, not the consumer's end: it must wait it
//! out and read the topic (bench/run.py's latency runs met it on every fresh topic).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gregor_client::{ClientConfig, Consumer, Producer, ProducerRecord};
use gregor_testkit::{Kafka, create_topic, unique_topic};

const RECORDS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_a_topic_created_a_moment_ago_reads_it() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let bootstrap = kafka.bootstrap().to_owned();
    let producer = Producer::connect(
        &ClientConfig::new()
            .set("bootstrap.servers", bootstrap.as_str())
            .expect("config"),
    )
    .await
    .expect("producer");
    // Several fresh topics: the window is short and not every topic falls into it.
    for round in 0..4 {
        let topic = unique_topic("new-topic");
        create_topic(&bootstrap, &topic, 6, 1).await.expect("topic");
        let config = ClientConfig::new()
            .set("bootstrap.servers", bootstrap.as_str())
            .and_then(|c| c.set("group.id", format!("{topic}-group")))
            .and_then(|c| c.set("auto.offset.reset", "earliest"))
            .expect("config");
        let mut consumer = Consumer::connect(&config).await.expect("consumer");
        consumer.subscribe(&[topic.as_str()]).expect("subscribe");
        let reader = tokio::spawn(async move {
            let mut values = Vec::new();
            while values.len() < RECORDS {
                let r = consumer.recv().await?;
                values.push(r.value.unwrap_or_default());
            }
            consumer.close().await?;
            Ok::<_, gregor_client::Error>(values)
        });
        let name: Arc<str> = Arc::from(topic.as_str());
        for i in 0..RECORDS {
            let value = Bytes::from(format!("{round}-{i}"));
            producer
                .send(
                    ProducerRecord::new(Arc::clone(&name), value).key(Bytes::from(format!("k{i}"))),
                )
                .await
                .expect("send");
        }
        let mut values = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .unwrap_or_else(|_| panic!("{topic}: not every record read within 60 s"))
            .expect("reader task")
            .unwrap_or_else(|e| panic!("{topic}: the consumer gave up: {e}"));
        values.sort();
        let mut expected: Vec<Bytes> = (0..RECORDS)
            .map(|i| Bytes::from(format!("{round}-{i}")))
            .collect();
        expected.sort();
        assert_eq!(values, expected, "{topic}");
    }
    producer.close().await.expect("close");
}
