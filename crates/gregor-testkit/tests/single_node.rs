//! The shared single-node broker: a keyed round trip through rskafka, and Kafka's own console
//! producer and consumer (a client nobody here wrote) talking to the same broker.

use std::time::Duration;

use gregor_testkit::{Kafka, create_topic, smoke, tools, unique_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_keyed_records_round_trip_on_three_partitions() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let topic = unique_topic("testkit-roundtrip");
    create_topic(kafka.bootstrap(), &topic, 3, 1)
        .await
        .expect("create topic");

    let trip = smoke::round_trip(kafka.bootstrap(), &topic, 3, 1, 1_000)
        .await
        .expect("every record read back as written");

    assert!(!trip.created, "create_topic made it, round_trip reused it");
    assert_eq!(trip.total(), 1_000);
    let counts: Vec<usize> = trip.partitions.iter().map(|p| p.records).collect();
    assert_eq!(counts, vec![334, 333, 333]);
    for p in &trip.partitions {
        // A fresh topic: offsets start at 0 and are dense.
        assert_eq!(p.first_offset, 0, "partition {}", p.partition);
        assert_eq!(p.last_offset, i64::try_from(p.records).unwrap() - 1);
        assert_eq!(p.high_watermark, i64::try_from(p.records).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkas_own_console_clients_produce_and_consume() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let topic = unique_topic("testkit-console");
    create_topic(kafka.bootstrap(), &topic, 2, 1)
        .await
        .expect("create topic");

    // The Java console producer writes keyed lines...
    let lines: String = (0..50).map(|i| format!("k{i}\tfrom-java-{i}\n")).collect();
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
        Duration::from_secs(60),
    )
    .await
    .expect("console producer");

    // ...and rskafka (our data path) writes 100 more.
    let trip = smoke::round_trip(kafka.bootstrap(), &topic, 2, 1, 100)
        .await
        .expect("rskafka round trip on a topic the Java client wrote to");
    assert_eq!(trip.total(), 100);

    // The Java console consumer reads all 150, ours included, keys and values intact.
    let out = tools::run(
        tools::class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            kafka.bootstrap(),
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "150",
            "--timeout-ms",
            "30000",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=\t",
        ],
        None,
        Duration::from_secs(90),
    )
    .await
    .expect("console consumer");
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort_unstable();
    let mut want: Vec<String> = (0..50)
        .map(|i| format!("k{i}\tfrom-java-{i}"))
        .chain((0..100).map(|i| format!("{}\t{}", smoke::key_of(i), smoke::value_of(&topic, i))))
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
}
