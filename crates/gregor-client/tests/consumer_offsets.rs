//! Offsets on the real broker: manual commits that Kafka's own consumer-groups tool reads back
//! (offsets, lag, our member id), its reset-offsets honoured at the next start,
//! auto.offset.reset none/latest, seek to a timestamp, pause and resume.

mod consumer_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use consumer_support::{bootstrap, config, create_topic, produce, unique_group};
use gregor_client::{ClientConfig, Consumer, Error, Record, TopicPartition};
use gregor_testkit::tools::{self, class};
use gregor_testkit::unique_topic;

async fn poll_n(c: &mut Consumer, n: usize, timeout: Duration) -> Vec<Record> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            start.elapsed() < timeout,
            "only {} of {n} records within {timeout:?}",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
    out
}

/// `(partition -> (current offset, log end, lag, consumer id))` from `--describe`.
fn describe_rows(stdout: &str, topic: &str) -> BTreeMap<i32, (String, String, String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7 && f[1] == topic).then(|| {
                (
                    f[2].parse().unwrap(),
                    (
                        f[3].to_owned(),
                        f[4].to_owned(),
                        f[5].to_owned(),
                        f[6].to_owned(),
                    ),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkas_group_tool_reads_our_commits_and_its_reset_is_honoured() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("off-tool");
    create_topic(&bootstrap, &topic, 2, &[]).await;
    produce(&bootstrap, &topic, 2, 100, 20, None).await;
    let group = unique_group("g-tool");
    let cfg = config(&bootstrap, &group)
        .set("enable.auto.commit", "false")
        .unwrap();

    let mut consumer = Consumer::connect(&cfg).await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let records = poll_n(&mut consumer, 200, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 200);
    // Processed everything of partition 0, the first 30 records of partition 1.
    consumer
        .commit_offsets(&[(&topic, 0, 100), (&topic, 1, 30)])
        .await
        .unwrap();
    let committed = consumer
        .committed(&[
            TopicPartition::new(&topic, 0),
            TopicPartition::new(&topic, 1),
        ])
        .await
        .unwrap();
    assert_eq!(committed[0].1, Some(100));
    assert_eq!(committed[1].1, Some(30));
    let our_lag = consumer.lag();
    assert_eq!(
        our_lag.iter().map(|l| l.end_offset).collect::<Vec<_>>(),
        vec![Some(100), Some(100)]
    );
    assert_eq!(
        our_lag.iter().map(|l| l.lag).collect::<Vec<_>>(),
        vec![Some(0), Some(0)],
        "all handed out"
    );
    let stats = consumer.stats();
    assert_eq!(stats.records, 200);
    assert_eq!(stats.commits, 1);
    assert!(stats.commit_latency_last.is_some());
    let (member_id, _) = consumer.generation().unwrap();

    let out = tools::run(
        class::CONSUMER_GROUPS,
        &[
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--group",
            &group,
        ],
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let rows = describe_rows(&out.stdout, &topic);
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    for (p, (current, end, lag, consumer_id)) in &rows {
        let ours = &our_lag[usize::try_from(*p).unwrap()];
        let committed = committed[usize::try_from(*p).unwrap()].1.unwrap();
        assert_eq!(
            current,
            &committed.to_string(),
            "partition {p}: {}",
            out.stdout
        );
        assert_eq!(end, &ours.end_offset.unwrap().to_string());
        assert_eq!(lag, &(ours.end_offset.unwrap() - committed).to_string());
        assert_eq!(consumer_id, &member_id, "the tool sees our member");
    }
    consumer.close().await.unwrap();

    // The tool resets the (now empty) group; the next start reads from there.
    tools::run(
        class::CONSUMER_GROUPS,
        &[
            "--bootstrap-server",
            &bootstrap,
            "--reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-offset",
            "10",
            "--execute",
        ],
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let mut consumer = Consumer::connect(&cfg).await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let records = poll_n(&mut consumer, 180, Duration::from_secs(30)).await;
    for p in 0..2 {
        let first = records.iter().find(|r| r.partition == p).unwrap();
        assert_eq!(
            first.offset, 10,
            "partition {p} restarts at the reset offset"
        );
    }
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_reset_none_names_the_partition_and_latest_reads_only_new_records() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("off-reset");
    create_topic(&bootstrap, &topic, 1, &[]).await;
    produce(&bootstrap, &topic, 1, 20, 10, None).await;

    let cfg = config(&bootstrap, &unique_group("g-none"))
        .set("auto.offset.reset", "none")
        .unwrap();
    let mut consumer = Consumer::connect(&cfg).await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let e = consumer.poll(Duration::from_secs(5)).await.unwrap_err();
    match &e {
        Error::NoOffset {
            topic: t,
            partition,
            reason,
        } => {
            assert_eq!((t.as_str(), *partition), (topic.as_str(), 0));
            assert!(reason.contains("auto.offset.reset=none"), "{reason}");
        }
        other => panic!("expected NoOffset, got {other}"),
    }
    assert!(e.to_string().contains(&format!("{topic}/0")), "{e}");
    // After a seek the same consumer reads.
    consumer.seek(&TopicPartition::new(&topic, 0), 15).unwrap();
    let r = poll_n(&mut consumer, 5, Duration::from_secs(10)).await;
    assert_eq!(
        r.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (15..20).collect::<Vec<_>>()
    );
    consumer.close().await.unwrap();

    // latest, no group: only records produced after the start.
    let cfg = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .unwrap()
        .set("auto.offset.reset", "latest")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap();
    let mut consumer = Consumer::connect(&cfg).await.unwrap();
    consumer.assign(&[TopicPartition::new(&topic, 0)]).unwrap();
    assert!(
        consumer
            .poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    produce(&bootstrap, &topic, 1, 3, 10, None).await;
    let r = poll_n(&mut consumer, 3, Duration::from_secs(10)).await;
    assert_eq!(
        r.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![20, 21, 22]
    );
    let e = consumer.commit().await.unwrap_err();
    assert!(e.to_string().contains("group.id"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_timestamp_pause_and_resume() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("off-seek");
    create_topic(&bootstrap, &topic, 2, &[]).await;
    let t0 = 1_700_000_000_000_i64;
    // Record i of each partition has timestamp t0 + i.
    produce(&bootstrap, &topic, 2, 100, 10, Some(t0)).await;

    let cfg = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap();
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    let mut consumer = Consumer::connect(&cfg).await.unwrap();
    consumer.assign(&[p0.clone(), p1.clone()]).unwrap();
    consumer
        .seek_to_timestamp(std::slice::from_ref(&p0), t0 + 42)
        .await
        .unwrap();
    consumer
        .seek_to_end(std::slice::from_ref(&p1))
        .await
        .unwrap();
    let r = poll_n(&mut consumer, 58, Duration::from_secs(10)).await;
    assert_eq!(r[0].offset, 42, "first record at or after the timestamp");
    assert_eq!(r[0].timestamp, t0 + 42);
    assert!(r.iter().all(|r| r.partition == 0));
    // Between two timestamps: the next one after it.
    consumer
        .seek_to_timestamp(std::slice::from_ref(&p0), t0 + 1_000_000)
        .await
        .unwrap();
    assert_eq!(
        consumer.position(&p0),
        Some(100),
        "past the last record: the end"
    );

    consumer
        .seek_to_beginning(&[p0.clone(), p1.clone()])
        .await
        .unwrap();
    consumer.pause(std::slice::from_ref(&p0)).unwrap();
    assert_eq!(consumer.paused(), vec![p0.clone()]);
    let r = poll_n(&mut consumer, 100, Duration::from_secs(10)).await;
    assert!(
        r.iter().all(|r| r.partition == 1),
        "nothing from a paused partition"
    );
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    consumer.resume(std::slice::from_ref(&p0)).unwrap();
    let r = poll_n(&mut consumer, 100, Duration::from_secs(10)).await;
    assert_eq!(
        r.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    assert!(r.iter().all(|r| r.partition == 0));
}
