//! Placement against the Java client on a real broker: Kafka's own console producer sends
//! records keyed `user-0..user-999` to a 12-partition topic; rskafka reads every partition back;
//! each record must sit on the partition `Murmur2` computes for its key.

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_partition::{Murmur2, Partitioner, RecordView};
use gregor_testkit::{Kafka, create_topic, rskafka_client, tools, unique_topic};
use rskafka::client::partition::UnknownTopicHandling;

const PARTITIONS: i32 = 12;
const KEYS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_the_java_producer_puts_them() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("placement");
    create_topic(kafka.bootstrap(), &topic, PARTITIONS, 1)
        .await
        .expect("create topic");

    let lines: String = (0..KEYS).map(|i| format!("user-{i}\tv{i}\n")).collect();
    tools::run(
        tools::class::CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            kafka.bootstrap(),
            "--topic",
            &topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=\t",
        ],
        Some(lines.as_bytes()),
        Duration::from_secs(120),
    )
    .await
    .expect("Kafka's console producer");

    // Read every partition to its high watermark: key -> partition where Java put it.
    let client = rskafka_client(kafka.bootstrap(), Duration::from_secs(30))
        .await
        .expect("rskafka client");
    let mut java: BTreeMap<String, i32> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let pc = client
            .partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (records, high_watermark) = pc
                .fetch_records(offset, 1..1_000_000, 500)
                .await
                .expect("fetch");
            for r in &records {
                let key = String::from_utf8(r.record.key.clone().expect("keyed record"))
                    .expect("utf-8 key");
                let value = String::from_utf8(r.record.value.clone().unwrap_or_default())
                    .expect("utf-8 value");
                assert_eq!(value, format!("v{}", &key["user-".len()..]));
                assert!(
                    java.insert(key.clone(), partition).is_none(),
                    "{key} read twice"
                );
                offset = r.offset + 1;
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    assert_eq!(java.len(), KEYS, "every record the console producer sent");

    let ours = Murmur2::new();
    let mut per_partition = [0_u32; PARTITIONS as usize];
    for (key, &partition) in &java {
        let want = ours
            .partition(&RecordView::new(Some(key.as_bytes())), PARTITIONS)
            .expect("murmur2");
        assert_eq!(
            want, partition,
            "key {key}: Java put it on {partition}, Murmur2 says {want}"
        );
        per_partition[partition as usize] += 1;
    }
    // A thousand keys spread over all twelve partitions, so the check covers each of them.
    assert!(per_partition.iter().all(|&n| n > 40), "{per_partition:?}");
}
