//! The producer's and consumer's statistics reach Prometheus: produce and consume real records,
//! scrape the registry's text and compare every series with the client's own stats and with the
//! broker's offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gregor::{ConsumerMetrics, ProducerMetrics};
use gregor_client::{Admin, ClientConfig, Consumer, NewTopic, Producer, ProducerRecord};
use gregor_testkit::{Kafka, unique_topic};
use prometheus_client::registry::Registry;

fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("client.id", "client-metrics-test")
        .unwrap()
}

/// `name{labels} value` lines of the text exposition, keyed by everything before the value.
fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn scrape(registry: &Registry) -> BTreeMap<String, f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    series(&text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_stats_are_scraped() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let bootstrap = kafka.bootstrap();
    let topic = unique_topic("client-metrics");
    let admin = Admin::connect(&config(bootstrap)).await.expect("admin");
    admin
        .create_topics(&[NewTopic::new(&topic, 3, 1)])
        .await
        .expect("create topic");
    admin
        .wait_for_leaders(&[&topic], Duration::from_secs(30))
        .await
        .expect("leaders");

    let mut registry = Registry::default();
    let producer = Producer::connect(&config(bootstrap))
        .await
        .expect("producer");
    ProducerMetrics::register(&mut registry, producer.clone());

    // Nothing sent yet: the series exist at zero.
    let before = scrape(&registry);
    assert_eq!(before["gregor_producer_records_total"], 0.0);
    assert_eq!(before["gregor_producer_latency_seconds_count"], 0.0);

    let records = 300;
    for i in 0..records {
        producer
            .send(
                ProducerRecord::new(topic.as_str(), format!("value-{i}"))
                    .key(format!("user-{}", i % 17)),
            )
            .await
            .expect("send");
    }
    let stats = producer.stats();
    let s = scrape(&registry);
    assert_eq!(s["gregor_producer_records_total"], records as f64);
    assert_eq!(s["gregor_producer_bytes_total"], stats.bytes as f64);
    assert_eq!(s["gregor_producer_batches_total"], stats.batches as f64);
    assert_eq!(s["gregor_producer_errors_total"], 0.0);
    assert_eq!(s["gregor_producer_queued_records"], 0.0);
    assert_eq!(s["gregor_producer_latency_seconds_count"], records as f64);
    assert!(s["gregor_producer_latency_seconds_sum"] > 0.0);
    assert_eq!(
        s[r#"gregor_producer_latency_seconds_bucket{le="+Inf"}"#],
        records as f64
    );
    // Per partition: equal to the broker's end offsets (the topic is new, so they start at 0).
    let specs: Vec<(&str, i32, gregor_client::OffsetSpec)> = (0..3)
        .map(|p| (topic.as_str(), p, gregor_client::OffsetSpec::Latest))
        .collect();
    let ends = admin
        .list_offsets(&specs, false)
        .await
        .expect("end offsets");
    let mut per_partition = 0.0;
    for end in ends {
        let p = end.partition;
        let key = format!(
            r#"gregor_producer_partition_records_total{{topic="{topic}",partition="{p}"}}"#
        );
        let scraped = s.get(&key).copied().unwrap_or(0.0);
        assert_eq!(Some(scraped as i64), end.offset, "partition {p}");
        per_partition += scraped;
    }
    assert_eq!(per_partition, records as f64);

    // The consumer reads everything in a group; the scrape shows the last observed stats.
    let group = unique_topic("client-metrics-group");
    let consumer_config = config(bootstrap)
        .set("group.id", &group)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("enable.auto.commit", "false")
        .unwrap();
    let mut consumer = Consumer::connect(&consumer_config).await.expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let metrics = ConsumerMetrics::register(&mut registry, &group);
    assert!(
        !scrape(&registry).contains_key(&format!(
            r#"gregor_consumer_records_total{{consumer_group="{group}"}}"#
        )),
        "no consumer series before the first observation"
    );
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < records && Instant::now() < deadline {
        seen += consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
            .len();
    }
    assert_eq!(seen, records);
    consumer.commit().await.expect("commit");
    metrics.observe(&consumer.stats());

    let s = scrape(&registry);
    let g = format!(r#"consumer_group="{group}""#);
    assert_eq!(
        s[&format!("gregor_consumer_records_total{{{g}}}")],
        records as f64
    );
    assert_eq!(s[&format!("gregor_consumer_commits_total{{{g}}}")], 1.0);
    assert_eq!(s[&format!("gregor_consumer_rebalances_total{{{g}}}")], 1.0);
    assert!(s[&format!("gregor_consumer_bytes_total{{{g}}}")] > 0.0);
    assert_eq!(s[&format!("gregor_consumer_lag_total{{{g}}}")], 0.0);
    for p in 0..3 {
        let key = format!(
            r#"gregor_consumer_partition_lag{{topic="{topic}",partition="{p}",consumer_group="{group}"}}"#
        );
        assert_eq!(s.get(&key).copied(), Some(0.0), "{key}");
    }
    consumer.close().await.expect("close");
    producer.close().await.expect("close producer");
}
