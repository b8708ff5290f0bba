//! Admin against the real broker: topics with configs, leaders, partitions, configs, offsets by
//! time, deletion, and the errors a user sees when things are wrong.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gregor_client::{Admin, ClientConfig, Error, KafkaCode, NewTopic, OffsetSpec};
use gregor_testkit::{Kafka, rskafka_client, unique_topic};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

async fn admin() -> Admin {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let config = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap()
        .set("client.id", "gregor-admin-test")
        .unwrap();
    Admin::connect(&config).await.expect("admin connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_configs_described_grown_and_deleted() {
    let admin = admin().await;
    let topic = unique_topic("admin-topic");
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)
            .config("retention.ms", "3600000")
            .config("cleanup.policy", "compact")])
        .await
        .unwrap();

    // Usable when create returns: every partition has a leader.
    let meta = admin.describe_topics(&[&topic]).await.unwrap();
    let info = meta.topic(&topic).unwrap();
    assert_eq!(info.error, None);
    assert_eq!(info.partitions.len(), 3);
    assert!(
        info.partitions
            .iter()
            .all(|p| p.leader.is_some() && p.isr.len() == 1)
    );
    assert_eq!(meta.brokers.len(), 1);
    assert!(meta.cluster_id.is_some());

    let configs = admin.describe_topic_config(&topic).await.unwrap();
    assert_eq!(configs["retention.ms"].as_deref(), Some("3600000"));
    assert_eq!(configs["cleanup.policy"].as_deref(), Some("compact"));

    admin
        .alter_topic_config(
            &topic,
            &BTreeMap::from([
                ("retention.ms".to_owned(), Some("7200000".to_owned())),
                ("cleanup.policy".to_owned(), None),
            ]),
        )
        .await
        .unwrap();
    // KRaft applies the change through the metadata log: the broker answering DescribeConfigs
    // may show the old value for a moment after AlterConfigs returned.
    let deadline = Instant::now() + Duration::from_secs(15);
    let configs = loop {
        let configs = admin.describe_topic_config(&topic).await.unwrap();
        if configs["retention.ms"].as_deref() == Some("7200000") || Instant::now() >= deadline {
            break configs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(configs["retention.ms"].as_deref(), Some("7200000"));
    assert_eq!(
        configs["cleanup.policy"].as_deref(),
        Some("delete"),
        "reset to the default"
    );

    admin.create_partitions(&topic, 5).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let meta = loop {
        let meta = admin.describe_topics(&[&topic]).await.unwrap();
        if meta.topic(&topic).unwrap().partitions.len() == 5 || Instant::now() >= deadline {
            break meta;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(meta.topic(&topic).unwrap().partitions.len(), 5);

    assert!(admin.list_topics().await.unwrap().contains(&topic));
    admin.delete_topics(&[&topic]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.list_topics().await.unwrap().contains(&topic) {
        assert!(
            Instant::now() < deadline,
            "{topic} still listed 30 s after delete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_topic_and_keep_kafkas_code() {
    let admin = admin().await;
    let topic = unique_topic("admin-dup");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    let e = admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::TOPIC_ALREADY_EXISTS), "{e}");
    assert!(e.to_string().contains(&topic), "{e}");
    assert!(!e.is_retriable());

    // Replication beyond the broker count is refused by the broker, with its message.
    let e = admin
        .create_topics(&[NewTopic::new(unique_topic("admin-rf"), 1, 3)])
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(KafkaCode(38)),
        "INVALID_REPLICATION_FACTOR: {e}"
    );

    let missing = unique_topic("admin-missing");
    let meta = admin.describe_topics(&[&missing]).await.unwrap();
    assert_eq!(
        meta.topic(&missing).unwrap().error,
        Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
    let e = admin
        .list_offsets(&[(&missing, 0, OffsetSpec::Latest)], false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_by_time_find_the_first_record_at_or_after() {
    let kafka = Kafka::shared().await.unwrap();
    let admin = admin().await;
    let topic = unique_topic("admin-offsets");
    admin
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();

    // Ten records one second apart, starting at a fixed time.
    let base = 1_700_000_000_000_i64;
    let client = rskafka_client(kafka.bootstrap(), Duration::from_secs(30))
        .await
        .unwrap();
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let records = (0..10_u8)
        .map(|i| Record {
            key: None,
            value: Some(vec![i]),
            headers: BTreeMap::new(),
            timestamp: Utc
                .timestamp_millis_opt(base + i64::from(i) * 1000)
                .unwrap(),
        })
        .collect();
    partition
        .produce(records, Compression::NoCompression)
        .await
        .unwrap();

    let at = |spec| (topic.as_str(), 0, spec);
    let one = |spec| {
        let admin = &admin;
        async move { admin.list_offsets(&[at(spec)], false).await.unwrap()[0].offset }
    };
    assert_eq!(one(OffsetSpec::Earliest).await, Some(0));
    assert_eq!(one(OffsetSpec::Latest).await, Some(10));
    assert_eq!(one(OffsetSpec::Timestamp(base + 3_500)).await, Some(4));
    assert_eq!(one(OffsetSpec::Timestamp(base + 4_000)).await, Some(4));
    assert_eq!(one(OffsetSpec::Timestamp(base + 60_000)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bootstrap_fails_in_bounded_time_naming_the_servers() {
    // Ports that nothing listens on.
    let dead: Vec<String> = (0..2)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        })
        .collect();
    let config = ClientConfig::new()
        .set("bootstrap.servers", dead.join(","))
        .unwrap()
        .set("socket.connection.setup.timeout.ms", "2000")
        .unwrap();
    let started = Instant::now();
    let e = Admin::connect(&config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let text = e.to_string();
    for addr in &dead {
        assert!(text.contains(addr), "{text}");
    }
    assert!(matches!(e, Error::Connection { .. }), "{e:?}");
    assert!(e.is_retriable());
}
