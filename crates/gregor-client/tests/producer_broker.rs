//! The producer against a real single-node Kafka (gregor-testkit's shared broker): results,
//! placement, headers, order, compression both ways with Kafka's own console clients, bad
//! input, backpressure, metadata refresh, fire-and-forget failures, close under load.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_client::{
    Admin, ClientConfig, Consumer, Error, Header, KafkaCode, NewTopic, Producer, ProducerRecord,
    Record, TopicPartition,
};
use gregor_partition::Murmur2;
use gregor_testkit::{Kafka, tools, unique_topic};

async fn kafka() -> Kafka {
    Kafka::shared().await.expect("local Kafka")
}

fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("client.id", "producer-test")
        .unwrap()
}

async fn create(bootstrap: &str, topic: &NewTopic) {
    let admin = Admin::connect(&config(bootstrap)).await.expect("admin");
    admin
        .create_topics(std::slice::from_ref(topic))
        .await
        .expect("create topic");
    admin
        .wait_for_leaders(&[&topic.name], Duration::from_secs(30))
        .await
        .expect("leaders");
}

/// Every record of `topic` (partitions `0..partitions`), read with gregor's consumer until
/// `expected` arrived (or 60 s passed: then the test fails on the count).
async fn read_all(bootstrap: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Record> {
    let config = config(bootstrap)
        .set("auto.offset.reset", "earliest")
        .unwrap();
    let mut consumer = Consumer::connect(&config).await.expect("consumer");
    let parts: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&parts).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)).await {
            Ok(records) => out.extend(records),
            // Right after a topic is created the consumer may see NOT_LEADER_OR_FOLLOWER once.
            Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("poll: {e}"),
        }
    }
    // Anything beyond `expected` would be a duplicate or a stray record: look once more.
    out.extend(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll"),
    );
    out
}

fn text(b: &Option<Bytes>) -> String {
    String::from_utf8(b.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_returns_where_records_went_and_headers_lose_what_rskafka_loses() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-basic");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 3, 1)).await;
    let producer = Producer::connect(&config(kafka.bootstrap()))
        .await
        .expect("producer");
    assert_eq!(producer.partitions(&topic).await.unwrap(), 3);

    // One keyed record: partition as the Java client would choose, offset, timestamp back.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let meta = producer
        .send(ProducerRecord::new(topic.as_str(), "v0").key("user-1"))
        .await
        .expect("send");
    assert_eq!(&*meta.topic, topic);
    assert_eq!(meta.partition, Murmur2::place(b"user-1", 3).unwrap());
    assert_eq!(meta.offset, 0);
    assert!(
        meta.timestamp >= before && meta.timestamp < before + 60_000,
        "{meta:?}"
    );

    // Explicit partition and an explicit timestamp.
    let meta = producer
        .send(
            ProducerRecord::new(topic.as_str(), "v1")
                .key("user-1")
                .partition(2)
                .timestamp(1_700_000_000_000),
        )
        .await
        .expect("send to partition 2");
    assert_eq!(meta.partition, 2);
    assert_eq!(meta.timestamp, 1_700_000_000_000);

    // A batch: one result per record, offsets dense per partition.
    let records: Vec<ProducerRecord> = (0..100)
        .map(|i| ProducerRecord::new(topic.as_str(), format!("b{i}")).key(format!("k{i}")))
        .collect();
    let results = producer.send_batch(records).await;
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (i, r) in results.into_iter().enumerate() {
        let meta = r.expect("batch record");
        assert_eq!(
            meta.partition,
            Murmur2::place(format!("k{i}").as_bytes(), 3).unwrap()
        );
        offsets.entry(meta.partition).or_default().push(meta.offset);
    }
    for (p, offs) in &offsets {
        let start = offs[0];
        assert_eq!(
            offs,
            &(start..start + offs.len() as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }

    // Headers: duplicates, order and null values as far as rskafka carries them; a null key,
    // an empty key, and a tombstone.
    let mut headered = ProducerRecord::new(topic.as_str(), "with-headers").partition(0);
    headered.headers = vec![
        Header::new("b", Some(Bytes::from_static(b"1"))),
        Header::new("a", Some(Bytes::from_static(b"2"))),
        Header::new("b", Some(Bytes::from_static(b"3"))),
        Header::new("n", None),
    ];
    let h_meta = producer.send(headered).await.expect("headers");
    let null_key = producer
        .send(ProducerRecord::new(topic.as_str(), "no-key").partition(0))
        .await
        .unwrap();
    let empty_key = producer
        .send(
            ProducerRecord::new(topic.as_str(), "empty-key")
                .key("")
                .partition(0),
        )
        .await
        .unwrap();
    let tombstone = producer
        .send(ProducerRecord::tombstone(topic.as_str(), "gone").partition(0))
        .await
        .unwrap();

    let stats = producer.stats();
    assert_eq!(stats.records, 106);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.headers_merged, 1, "the first b=1 was dropped");
    assert_eq!(stats.latency.count(), 106);
    assert_eq!(
        stats.partitions.values().map(|p| p.records).sum::<u64>(),
        106
    );
    assert!(stats.batches >= 4 && stats.batches <= 106, "{stats:?}");
    assert_eq!(stats.queued_records, 0);
    producer.close().await.expect("close");

    let all = read_all(kafka.bootstrap(), &topic, 3, 106).await;
    assert_eq!(all.len(), 106);
    let at = |p: i32, o: i64| {
        all.iter()
            .find(|r| r.partition == p && r.offset == o)
            .expect("record")
    };
    let h = at(0, h_meta.offset);
    let got: Vec<(String, Option<Bytes>)> = h
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    // What is lost: the duplicate "b" (only the last value survives), the order given (headers
    // arrive sorted by key) and the null value (it arrives empty).
    assert_eq!(
        got,
        vec![
            ("a".into(), Some(Bytes::from_static(b"2"))),
            ("b".into(), Some(Bytes::from_static(b"3"))),
            ("n".into(), Some(Bytes::new())),
        ]
    );
    assert_eq!(at(0, null_key.offset).key, None);
    assert_eq!(at(0, empty_key.offset).key, Some(Bytes::new()));
    let t = at(0, tombstone.offset);
    assert_eq!(t.value, None);
    assert_eq!(t.key, Some(Bytes::from_static(b"gone")));
    let ts = at(2, meta.offset);
    assert_eq!(ts.timestamp, 1_700_000_000_000);
    assert_eq!(text(&ts.value), "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_over_10000_records_on_6_partitions() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-order");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 6, 1)).await;
    let producer = Producer::connect(&config(kafka.bootstrap()).set("linger.ms", "2").unwrap())
        .await
        .expect("producer");
    let topic_arc: Arc<str> = Arc::from(topic.as_str());
    // Four tasks, 25 keys each, 100 records per key, interleaved.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let producer = producer.clone();
        let topic = Arc::clone(&topic_arc);
        tasks.push(tokio::spawn(async move {
            let mut deliveries = Vec::new();
            for seq in 0..100 {
                for k in 0..25 {
                    let key = format!("key-{}", t * 25 + k);
                    let record =
                        ProducerRecord::new(Arc::clone(&topic), format!("{key}:{seq}")).key(key);
                    deliveries.push(producer.enqueue(record).await.expect("enqueue"));
                }
            }
            for d in deliveries {
                d.await.expect("delivered");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = producer.stats();
    assert_eq!(stats.records, 10_000);
    assert_eq!(stats.partitions.len(), 6);
    assert!(
        stats.partitions.values().all(|p| p.records > 0),
        "{stats:?}"
    );
    producer.close().await.unwrap();

    let all = read_all(kafka.bootstrap(), &topic, 6, 10_000).await;
    assert_eq!(all.len(), 10_000);
    let mut by_key: HashMap<String, Vec<(i32, i64, u32)>> = HashMap::new();
    for r in &all {
        let value = text(&r.value);
        let (key, seq) = value.rsplit_once(':').unwrap();
        assert_eq!(text(&r.key), key);
        by_key.entry(key.to_owned()).or_default().push((
            r.partition,
            r.offset,
            seq.parse().unwrap(),
        ));
    }
    assert_eq!(by_key.len(), 100);
    for (key, mut recs) in by_key {
        let partition = Murmur2::place(key.as_bytes(), 6).unwrap();
        assert!(
            recs.iter().all(|r| r.0 == partition),
            "{key} spread over partitions"
        );
        recs.sort_by_key(|r| r.1);
        let seqs: Vec<u32> = recs.iter().map(|r| r.2).collect();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>(), "{key} out of order");
    }
}

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// The codec of every batch in partition 0 of each topic on the local broker, from Kafka's
/// own DumpLogSegments (one run for all). An external cluster's files are not reachable: then
/// `None`, and only the read-back checks apply.
async fn codecs_on_disk(topics: &[String]) -> Option<HashMap<String, Vec<String>>> {
    let state = gregor_testkit::local_state()
        .filter(|_| std::env::var_os("KAFKA_BOOTSTRAP_SERVERS").is_none())?;
    let segment = |topic: &str| {
        state
            .dir
            .join("data")
            .join(format!("{topic}-0"))
            .join("00000000000000000000.log")
            .display()
            .to_string()
    };
    let files: Vec<String> = topics.iter().map(|t| segment(t)).collect();
    let out = tools::run(
        "org.apache.kafka.tools.DumpLogSegments",
        &["--files", &files.join(",")],
        None,
        Duration::from_secs(60),
    )
    .await
    .expect("DumpLogSegments");
    let mut codecs: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<&String> = None;
    for line in out.stdout.lines() {
        if let Some(file) = line.strip_prefix("Dumping ") {
            current = topics.iter().find(|t| segment(t) == file.trim());
        } else if let (Some(topic), Some(codec)) = (current, line.split("compresscodec: ").nth(1)) {
            let codec = codec
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            codecs.entry(topic.clone()).or_default().push(codec);
        }
    }
    Some(codecs)
}

/// Every batch of each `{prefix}-{codec}` topic is stored with that codec (local broker).
async fn assert_stored_with_codecs(prefix: &str) {
    let topics: Vec<String> = CODECS.iter().map(|c| format!("{prefix}-{c}")).collect();
    if let Some(found) = codecs_on_disk(&topics).await {
        for codec in CODECS {
            let topic = format!("{prefix}-{codec}");
            let stored = found.get(&topic).cloned().unwrap_or_default();
            assert!(!stored.is_empty(), "{topic}: no batches on disk");
            assert!(
                stored.iter().all(|c| c == codec),
                "{topic}: batches stored as {stored:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_is_read_by_kafkas_console_consumer() {
    let kafka = kafka().await;
    let prefix = unique_topic("prod-codec");
    for codec in CODECS {
        let topic = format!("{prefix}-{codec}");
        create(kafka.bootstrap(), &NewTopic::new(&topic, 1, 1)).await;
        let producer = Producer::connect(
            &config(kafka.bootstrap())
                .set("compression.type", codec)
                .unwrap()
                .set("linger.ms", "50")
                .unwrap(),
        )
        .await
        .expect("producer");
        let records = (0..200)
            .map(|i| {
                ProducerRecord::new(
                    topic.as_str(),
                    format!("{codec}-value-{i}-{}", "x".repeat(i % 50)),
                )
                .key(format!("k{i}"))
            })
            .collect();
        for r in producer.send_batch(records).await {
            r.expect("sent");
        }
        producer.close().await.unwrap();
    }
    assert_stored_with_codecs(&prefix).await;
    // One Java consumer reads all five topics.
    let out = tools::run(
        tools::class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            kafka.bootstrap(),
            "--include",
            &format!("{prefix}-.*"),
            "--from-beginning",
            "--max-messages",
            "1000",
            "--timeout-ms",
            "60000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=\t",
        ],
        None,
        Duration::from_secs(120),
    )
    .await
    .expect("console consumer");
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = CODECS
        .iter()
        .flat_map(|codec| {
            (0..200).map(move |i| format!("k{i}\t{codec}-value-{i}-{}", "x".repeat(i % 50)))
        })
        .collect();
    want.sort_unstable();
    assert_eq!(got.len(), 1000);
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gregor_reads_what_the_java_producer_compressed() {
    let kafka = kafka().await;
    let prefix = unique_topic("java-codec");
    for codec in CODECS {
        let topic = format!("{prefix}-{codec}");
        create(kafka.bootstrap(), &NewTopic::new(&topic, 1, 1)).await;
        let lines: String = (0..100)
            .map(|i| format!("k{i}\t{codec}-{i}-{}\n", "y".repeat(i)))
            .collect();
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
                // The console producer's own option wins over --producer-property.
                "--compression-codec",
                codec,
                "--producer-property",
                "linger.ms=100",
            ],
            Some(lines.as_bytes()),
            Duration::from_secs(90),
        )
        .await
        .expect("console producer");
        let records = read_all(kafka.bootstrap(), &topic, 1, 100).await;
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| (text(&r.key), text(&r.value)))
            .collect();
        let want: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{i}"), format!("{codec}-{i}-{}", "y".repeat(i))))
            .collect();
        assert_eq!(got, want, "{codec}");
    }
    assert_stored_with_codecs(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_clearly_and_alone() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-bad");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 2, 1)).await;
    let producer = Producer::connect(
        &config(kafka.bootstrap())
            .set("max.request.size", "100000")
            .unwrap()
            .set("max.block.ms", "2000")
            .unwrap(),
    )
    .await
    .expect("producer");

    // Too large for max.request.size: refused before sending; the rest of the batch goes.
    let results = producer
        .send_batch(vec![
            ProducerRecord::new(topic.as_str(), "small-1").partition(0),
            ProducerRecord::new(topic.as_str(), vec![b'x'; 200_000]).partition(0),
            ProducerRecord::new(topic.as_str(), "small-2").partition(0),
        ])
        .await;
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::MESSAGE_TOO_LARGE), "{e}");
    assert!(!e.is_retriable());
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{topic}/0")) && msg.contains("max.request.size"),
        "{msg}"
    );
    let (a, b) = (results[0].as_ref().unwrap(), results[2].as_ref().unwrap());
    assert_eq!(
        (a.offset, b.offset),
        (0, 1),
        "the others are written back to back"
    );

    // A negative timestamp is refused the same way (the Java client refuses it too).
    let e = producer
        .send(ProducerRecord::new(topic.as_str(), "t").timestamp(-5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode(32)), "{e}");

    // Unknown topic: at once, named, not retried until a timeout.
    let missing = unique_topic("prod-missing");
    let start = Instant::now();
    let e = producer
        .send(ProducerRecord::new(missing.as_str(), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "not waited out: {:?}",
        start.elapsed()
    );

    // A partition the topic does not have (after waiting max.block.ms for it to appear).
    let e = producer
        .send(ProducerRecord::new(topic.as_str(), "x").partition(7))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    assert!(e.to_string().contains(&format!("{topic}/7")), "{e}");

    // The manual partitioner refuses records without a partition, with a configuration error.
    let manual = Producer::connect(
        &config(kafka.bootstrap())
            .set("partitioner", "manual")
            .unwrap(),
    )
    .await
    .unwrap();
    let e = manual
        .send(ProducerRecord::new(topic.as_str(), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "partitioner"),
        "{e}"
    );
    manual
        .send(ProducerRecord::new(topic.as_str(), "x").partition(1))
        .await
        .unwrap();
    manual.close().await.unwrap();

    // Priority on a one-partition topic: a configuration error, not a panic.
    let single = unique_topic("prod-single");
    create(kafka.bootstrap(), &NewTopic::new(&single, 1, 1)).await;
    let priority = Producer::connect(
        &config(kafka.bootstrap())
            .set("partitioner", "priority")
            .unwrap(),
    )
    .await
    .unwrap();
    let e = priority
        .send(ProducerRecord::new(single.as_str(), "x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least 2 partitions"), "{e}");
    priority.close().await.unwrap();

    // After close: refused.
    let clone = producer.clone();
    producer.close().await.unwrap();
    assert!(matches!(
        clone
            .send(ProducerRecord::new(topic.as_str(), "late"))
            .await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bootstrap_servers_fail_in_bounded_time_naming_them() {
    // Ports nothing listens on: connection refused at once.
    let config = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:1,127.0.0.1:2")
        .unwrap()
        .set("socket.connection.setup.timeout.ms", "2000")
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), Producer::connect(&config))
        .await
        .expect("connect returns within 60 s")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("127.0.0.1:1") && msg.contains("127.0.0.1:2"),
        "{msg}"
    );
    assert!(e.is_retriable(), "a connection error may go away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_waits_for_space_then_times_out() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-full");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 1, 1)).await;
    // A 4 KiB buffer that nothing drains (linger 30 s, batch.size out of reach).
    let producer = Producer::connect(
        &config(kafka.bootstrap())
            .set("buffer.memory", "4096")
            .unwrap()
            .set("max.request.size", "2048")
            .unwrap()
            .set("batch.size", "1000000")
            .unwrap()
            .set("linger.ms", "30000")
            .unwrap()
            .set("delivery.timeout.ms", "120000")
            .unwrap()
            .set("max.block.ms", "300")
            .unwrap(),
    )
    .await
    .unwrap();
    let mut accepted = Vec::new();
    let full = loop {
        match producer
            .enqueue(ProducerRecord::new(topic.as_str(), vec![b'v'; 500]))
            .await
        {
            Ok(d) => accepted.push(d),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100, "the buffer never filled");
    };
    assert!(matches!(full, Error::Timeout { .. }), "{full}");
    assert!(full.to_string().contains("buffer.memory"), "{full}");
    assert!(!accepted.is_empty());
    let queued = producer.stats().queued_records;
    assert_eq!(queued, accepted.len() as u64);
    // A flush drains it; the accepted records are written; there is room again.
    producer.flush().await;
    for (i, d) in accepted.into_iter().enumerate() {
        assert_eq!(d.await.expect("delivered").offset, i as i64);
    }
    let after = producer
        .enqueue(ProducerRecord::new(topic.as_str(), "after"))
        .await
        .expect("room again");
    // close() sends at once, without waiting out the 30 s linger.
    producer.close().await.unwrap();
    after.await.expect("delivered by close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_partitions_are_used() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-grow");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 2, 1)).await;
    let producer = Producer::connect(
        &config(kafka.bootstrap())
            .set("metadata.max.age.ms", "500")
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(producer.partitions(&topic).await.unwrap(), 2);
    producer
        .send(ProducerRecord::new(topic.as_str(), "a").key("k"))
        .await
        .unwrap();
    let admin = Admin::connect(&config(kafka.bootstrap())).await.unwrap();
    admin.create_partitions(&topic, 4).await.expect("grow to 4");
    admin
        .wait_for_leaders(&[&topic], Duration::from_secs(30))
        .await
        .unwrap();
    // A record naming a new partition refreshes at once rather than failing.
    let meta = producer
        .send(ProducerRecord::new(topic.as_str(), "p3").partition(3))
        .await
        .expect("partition 3 after growth");
    assert_eq!((meta.partition, meta.offset), (3, 0));
    // Keyed placement follows the new count (the periodic refresh or the one above).
    let deadline = Instant::now() + Duration::from_secs(30);
    while producer.partitions(&topic).await.unwrap() != 4 {
        assert!(Instant::now() < deadline, "partition count never refreshed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..50 {
        let key = format!("grown-{i}");
        let meta = producer
            .send(ProducerRecord::new(topic.as_str(), "x").key(key.clone()))
            .await
            .unwrap();
        assert_eq!(
            meta.partition,
            Murmur2::place(key.as_bytes(), 4).unwrap(),
            "{key}"
        );
    }
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_and_forget_failures_reach_the_callback_and_big_batches_are_split() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-cb");
    // The topic takes batches of at most 2,000 bytes.
    create(
        kafka.bootstrap(),
        &NewTopic::new(&topic, 1, 1).config("max.message.bytes", "2000"),
    )
    .await;
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&deliveries);
    let producer = Producer::builder(&config(kafka.bootstrap()).set("linger.ms", "200").unwrap())
        .on_delivery(move |d| seen.lock().unwrap().push(d))
        .build()
        .await
        .unwrap();
    // Ten 300-byte records: one batch of ~3 KB that the broker refuses; split, all written.
    for i in 0..10 {
        producer
            .produce(ProducerRecord::new(
                topic.as_str(),
                format!("{i:03}{}", "s".repeat(297)),
            ))
            .await
            .unwrap();
    }
    producer.flush().await;
    {
        let got = deliveries.lock().unwrap();
        assert_eq!(got.len(), 10);
        let mut offsets: Vec<i64> = got
            .iter()
            .map(|d| d.result.as_ref().expect("split and written").offset)
            .collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    }
    // One 3,000-byte record can never fit: accepted (under max.request.size), refused by the
    // broker, reported to the callback with the record.
    producer
        .produce(ProducerRecord::new(topic.as_str(), vec![b'z'; 3000]).key("too-big"))
        .await
        .expect("accepted");
    producer.flush().await;
    {
        let got = deliveries.lock().unwrap();
        let last = got.last().unwrap();
        let e = last.result.as_ref().unwrap_err();
        assert_eq!(e.code(), Some(KafkaCode::MESSAGE_TOO_LARGE), "{e}");
        assert!(e.to_string().contains(&format!("{topic}/0")), "{e}");
        assert_eq!(last.record.key.as_deref(), Some(&b"too-big"[..]));
        assert_eq!(last.record.value.as_ref().map(Bytes::len), Some(3000));
        assert_eq!(producer.stats().errors, 1);
    }
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_under_load_loses_nothing() {
    let kafka = kafka().await;
    let topic = unique_topic("prod-close");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 3, 1)).await;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (ok2, failed2) = (Arc::clone(&ok), Arc::clone(&failed));
    let producer = Producer::builder(&config(kafka.bootstrap()).set("linger.ms", "20").unwrap())
        .on_delivery(move |d| {
            if d.result.is_ok() {
                ok2.fetch_add(1, Ordering::SeqCst);
            } else {
                failed2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .await
        .unwrap();
    let topic_arc: Arc<str> = Arc::from(topic.as_str());
    let mut tasks = Vec::new();
    for t in 0..4 {
        let producer = producer.clone();
        let topic = Arc::clone(&topic_arc);
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0_u64;
            for i in 0.. {
                let record = ProducerRecord::new(Arc::clone(&topic), format!("{t}-{i}"))
                    .key(format!("{t}-{i}"));
                match producer.produce(record).await {
                    Ok(()) => accepted += 1,
                    Err(Error::Closed) => break,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    producer.clone().close().await.expect("close");
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    assert!(accepted > 1000, "load was light: {accepted}");
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert_eq!(
        ok.load(Ordering::SeqCst),
        accepted,
        "every accepted record was delivered before close returned"
    );
    let all = read_all(kafka.bootstrap(), &topic, 3, accepted as usize).await;
    assert_eq!(
        all.len() as u64,
        accepted,
        "and every one is on the broker, once"
    );
}
