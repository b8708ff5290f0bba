//! The fetch path against batches the real broker returns: every codec (zstd included, which
//! rskafka's Fetch v4 cannot read), duplicate headers from Kafka's Java producer in order,
//! aborted transactions from the Java producer filtered under read_committed, and corrupt data
//! on disk reported with partition and offset under both policies.

mod consumer_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use consumer_support::{bootstrap, create_topic, parse_value, produce};
use gregor_client::{ClientConfig, Consumer, CorruptPolicy, Error, Record, TopicPartition};
use gregor_testkit::tools::{self, class};
use gregor_testkit::{rskafka_client, unique_topic};
use rskafka::chrono::Utc;
use rskafka::client::partition::{Compression, UnknownTopicHandling};

fn reader(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap()
}

async fn read(c: &mut Consumer, n: usize) -> Vec<Record> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "only {} of {n} records",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_type_the_broker_writes_is_read() {
    let bootstrap = bootstrap().await;
    for codec in ["zstd", "lz4", "gzip", "snappy"] {
        let topic = unique_topic(&format!("codec-{codec}"));
        create_topic(&bootstrap, &topic, 2, &[("compression.type", codec)]).await;
        // rskafka sends uncompressed batches; the broker stores them with the topic's codec.
        produce(&bootstrap, &topic, 2, 500, 200, None).await;
        let mut c = Consumer::connect(&reader(&bootstrap)).await.unwrap();
        c.assign(&[
            TopicPartition::new(&topic, 0),
            TopicPartition::new(&topic, 1),
        ])
        .unwrap();
        let records = read(&mut c, 1000).await;
        let mut next: BTreeMap<i32, usize> = BTreeMap::new();
        for r in &records {
            let (p, i) = parse_value(r.value.as_deref().unwrap());
            assert_eq!(p, r.partition);
            let want = next.entry(p).or_default();
            assert_eq!(
                (i, r.offset),
                (*want, *want as i64),
                "{codec}: in order, none missing"
            );
            *want += 1;
            assert_eq!(r.key.as_deref(), Some(format!("{p}-{i}").as_bytes()));
        }
        let stats = c.stats();
        assert!(
            stats.bytes < 1000 * 200 / 2,
            "{codec}: {} bytes fetched for 200,000 bytes of padded values: the batches were compressed",
            stats.bytes
        );
        assert_eq!(stats.total_lag, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_headers_from_the_java_producer_keep_their_order() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("headers");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    tools::run(
        class::CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
            "--property",
            "parse.headers=true",
        ],
        Some(b"h:1,h:2,x:3,h:4\tvalue-one\nsolo:x\tvalue-two\n"),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let mut c = Consumer::connect(&reader(&bootstrap)).await.unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).unwrap();
    let records = read(&mut c, 2).await;
    let headers: Vec<(String, Option<String>)> = records[0]
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                h.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect();
    let want: Vec<(String, Option<String>)> = [("h", "1"), ("h", "2"), ("x", "3"), ("h", "4")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect();
    assert_eq!(headers, want);
    assert_eq!(records[0].value.as_deref(), Some(&b"value-one"[..]));
    assert_eq!(
        records[1].header("solo").and_then(|h| h.value.as_deref()),
        Some(&b"x"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_of_the_java_producer_are_not_delivered_under_read_committed() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("txn");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumer_support/TxnWriter.java");
    tools::run(
        &program.display().to_string(),
        &[
            &bootstrap,
            &topic,
            &unique_topic("txn-id"),
            "commit:5,abort:7,commit:3,abort:2,commit:4",
        ],
        None,
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    let values = |records: &[Record]| -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
            .collect()
    };
    let committed_cfg = reader(&bootstrap)
        .set("isolation.level", "read_committed")
        .unwrap();
    let mut c = Consumer::connect(&committed_cfg).await.unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).unwrap();
    let got = read(&mut c, 12).await;
    // Nothing more arrives: the aborted ones are filtered, not late.
    let more = c.poll(Duration::from_millis(800)).await.unwrap();
    assert!(more.is_empty(), "{:?}", values(&more));
    let got = values(&got);
    assert_eq!(got.len(), 12);
    assert!(got.iter().all(|v| v.starts_with("commit-")), "{got:?}");
    assert_eq!(got.first().map(String::as_str), Some("commit-0"));
    assert_eq!(got.last().map(String::as_str), Some("commit-20"));
    assert_eq!(
        c.lag()[0].lag,
        Some(0),
        "the position moved past the markers"
    );

    // read_uncommitted sees all 21 data records (markers are never records).
    let mut c = Consumer::connect(&reader(&bootstrap)).await.unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).unwrap();
    let all = values(&read(&mut c, 21).await);
    assert_eq!(all.iter().filter(|v| v.starts_with("abort-")).count(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_data_on_disk_is_reported_with_partition_and_offset_never_skipped_silently() {
    let bootstrap = bootstrap().await;
    let state = gregor_testkit::local_state()
        .filter(|_| std::env::var_os("KAFKA_BOOTSTRAP_SERVERS").is_none())
        .expect(
            "this test corrupts a log segment on disk, so it needs the local broker started by \
         gregor-testkit (unset KAFKA_BOOTSTRAP_SERVERS)",
        );
    let topic = unique_topic("corrupt");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    // Three batches: offsets 0-2, 3-5 (to be corrupted), 6-8.
    let client = rskafka_client(&bootstrap, Duration::from_secs(30))
        .await
        .unwrap();
    let pc = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    for name in ["good-a", "CORRUPTME", "good-c"] {
        let batch = (0..3)
            .map(|i| rskafka::record::Record {
                key: None,
                value: Some(format!("{name}-{i}").into_bytes()),
                headers: BTreeMap::new(),
                timestamp: Utc::now(),
            })
            .collect();
        pc.produce(batch, Compression::NoCompression).await.unwrap();
    }
    let segment = state
        .dir
        .join("data")
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"CORRUPTME")
        .expect("the value in the segment");
    bytes[at] = b'X';
    std::fs::write(&segment, &bytes).unwrap();

    let p0 = TopicPartition::new(&topic, 0);
    let mut c = Consumer::connect(&reader(&bootstrap)).await.unwrap();
    c.assign(std::slice::from_ref(&p0)).unwrap();
    let first = read(&mut c, 3).await;
    assert_eq!(
        first.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let expect_corrupt = |e: Error| match e {
        Error::CorruptRecord {
            topic: t,
            partition,
            offset,
            resume_at,
            message,
        } => {
            assert_eq!(
                (t.as_str(), partition, offset, resume_at),
                (topic.as_str(), 0, 3, Some(6))
            );
            assert!(message.contains("CRC32C"), "{message}");
        }
        other => panic!("expected CorruptRecord, got {other}"),
    };
    // Stop (the default): the same error, again and again, at the same offset.
    for _ in 0..2 {
        expect_corrupt(c.poll(Duration::from_secs(5)).await.unwrap_err());
        assert_eq!(c.position(&p0), Some(3));
    }
    // Report: the error once (for the handler's error path), then reading goes on after it.
    c.set_corrupt_policy(CorruptPolicy::Report);
    expect_corrupt(c.poll(Duration::from_secs(5)).await.unwrap_err());
    let rest = read(&mut c, 3).await;
    assert_eq!(
        rest.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
}
