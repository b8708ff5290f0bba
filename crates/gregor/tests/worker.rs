//! The Worker on the real broker: poison records to the DLQ with every header while the rest
//! is processed, transient failures retried without reaching the DLQ, /metrics over HTTP
//! agreeing with what was processed, and a shutdown under load that loses nothing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor::client::{ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};
use gregor::codec::{CodecRegistry, JsonCodec};
use gregor::event::{Event, Item, Money, OrderEvent, OrderStatus, TypedEvent};
use gregor::handler::dead_letter::{self, DeadLetterLayer};
use gregor::handler::metrics::Metrics;
use gregor::handler::retry::RetryLayer;
use gregor::handler::{Error, Fallback, Message, Router, Stack, handler_fn};
use gregor::{ProducerPublisher, Worker, WorkerStats};
use gregor_testkit::{Kafka, create_topic, unique_topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Seen = Arc<Mutex<Vec<(i32, i64)>>>;

fn order(i: usize) -> OrderEvent {
    OrderEvent {
        order_id: format!("o-{i}"),
        user_id: format!("u-{}", i % 7),
        status: OrderStatus::Created,
        amount: Money::from_cents(1299).unwrap(),
        items: vec![Item {
            product_id: "p-1".into(),
            quantity: 1,
            price: Money::from_cents(1299).unwrap(),
        }],
        created_at: gregor::event::time::now(),
    }
}

fn record(topic: &str, event: &Event, key: &str) -> ProducerRecord {
    let mut r =
        ProducerRecord::new(topic, event.to_json().unwrap().into_bytes()).key(key.to_owned());
    for h in event.headers(Some(1)) {
        r = r.header(h.key, h.value.unwrap_or_default());
    }
    r
}

fn config(kafka: &Kafka, group: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap()
        .set("group.id", group)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record of `topic` (all partitions), read without a group.
async fn read_all(
    kafka: &Kafka,
    topic: &str,
    partitions: i32,
    expect: usize,
) -> Vec<gregor::client::Record> {
    let config = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap();
    let mut c = Consumer::connect(&config).await.unwrap();
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(&tps).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expect && Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(300)).await.unwrap());
    }
    out
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// Sum of the samples of `metric` whose labels contain every `want` pair.
fn sample_sum(text: &str, metric: &str, want: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| want.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_with_every_header_transients_recover_and_metrics_agree() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("w-orders");
    let dlq = format!("{topic}.dlq");
    create_topic(kafka.bootstrap(), &topic, 3, 1).await.unwrap();
    create_topic(kafka.bootstrap(), &dlq, 1, 1).await.unwrap();
    let group = unique_topic("w-group");
    let producer = Arc::new(Producer::connect(&config(&kafka, &group)).await.unwrap());

    // 30 good orders, 3 of which fail twice before succeeding; 2 invalid JSON; 1 unknown type.
    let mut sent = 0;
    for i in 0..30 {
        let mut e = order(i).to_event("test").unwrap();
        if i % 10 == 3 {
            e = e.with_metadata("fail_times", "2");
        }
        producer
            .send(record(&topic, &e, &format!("u-{i}")))
            .await
            .unwrap();
        sent += 1;
    }
    let poison_values: Vec<&[u8]> = vec![b"{\"id\": not json", b"\x00\x00\x00\x00\x07garbage"];
    for v in &poison_values {
        let r = ProducerRecord::new(topic.as_str(), v.to_vec())
            .key("u-poison")
            .header("event-type", "order.created")
            .header("x-trace", "keep-me");
        producer.send(r).await.unwrap();
        sent += 1;
    }
    let refund = Event::new(
        "order.refunded",
        "test",
        serde_json::json!({"order_id": "o-9"}),
    );
    producer.send(record(&topic, &refund, "u-9")).await.unwrap();
    sent += 1;

    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    let created = handler_fn(move |m: Message| {
        let s = Arc::clone(&s);
        async move {
            let event = m.event()?;
            let fail_times: u32 = event
                .metadata
                .get("fail_times")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if m.attempt() <= fail_times {
                return Err(Error::retriable("inventory service unavailable"));
            }
            OrderEvent::from_event(event).map_err(|e| Error::validation(e.to_string()))?;
            s.lock().unwrap().push((m.partition(), m.offset()));
            Ok(())
        }
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let consumer_metrics = gregor::ConsumerMetrics::register(&mut registry, &group);
    let handler = Stack::new(
        Router::new()
            .route("order.created", created)
            .fallback(Fallback::DeadLetter),
    )
    .metrics(metrics.layer())
    .tracing()
    .dead_letter(DeadLetterLayer::new(Arc::new(
        ProducerPublisher::new(Arc::clone(&producer)).metrics(metrics.clone()),
    )))
    .retry(
        RetryLayer::new()
            .max_attempts(3)
            .backoff(Duration::from_millis(20), 2.0),
    )
    .timeout(Duration::from_secs(10))
    .build();
    let server =
        gregor::telemetry::MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry))
            .await
            .unwrap();

    let worker = Worker::builder(config(&kafka, &group))
        .topics([topic.clone()])
        .codecs(Arc::new(
            CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        ))
        .handler(handler)
        .metrics(metrics)
        .consumer_metrics(consumer_metrics)
        .commit_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());

    wait_until("30 processed", Duration::from_secs(60), || {
        seen.lock().unwrap().len() >= 30
    })
    .await;
    let dead = read_all(&kafka, &dlq, 1, 3).await;
    stop.trigger();
    let stats: WorkerStats = run.await.unwrap().unwrap();

    // Everything accounted for: processed + dead-lettered = sent; the transient ones retried.
    assert_eq!(stats.records, sent);
    assert_eq!(stats.processed, 30);
    assert_eq!(stats.dead_lettered, 3);
    assert_eq!(stats.retries, 3 * 2);
    assert_eq!(stats.decode_errors, 2);
    assert_eq!(seen.lock().unwrap().len(), 30, "each good record once");

    // The DLQ: 3 records, values and keys unchanged, original headers kept, every header set.
    assert_eq!(dead.len(), 3, "{dead:?}");
    for r in &dead {
        for h in dead_letter::HEADERS {
            assert_eq!(
                r.headers.iter().filter(|x| x.key == h).count(),
                1,
                "header {h} once in {r:?}"
            );
        }
        let get = |k: &str| {
            let v = r
                .header(k)
                .and_then(|h| h.value.clone())
                .unwrap_or_default();
            String::from_utf8(v.to_vec()).unwrap()
        };
        assert_eq!(get("original_topic"), topic);
        assert_eq!(get("consumer_group"), group);
        assert_eq!(get("error_class"), "fatal");
        assert_eq!(get("retry_count"), "0");
        let partition: i32 = get("original_partition").parse().unwrap();
        assert!((0..3).contains(&partition));
        get("original_offset").parse::<i64>().unwrap();
        assert!(get("original_timestamp").parse::<i64>().unwrap() > 1_600_000_000_000);
        if get("error").contains("order.refunded") {
            assert_eq!(
                r.value.as_deref(),
                Some(refund.to_json().unwrap().as_bytes())
            );
        } else {
            assert!(get("error").contains("cannot decode"), "{}", get("error"));
            assert!(poison_values.iter().any(|v| r.value.as_deref() == Some(*v)));
            assert_eq!(r.key.as_deref(), Some(&b"u-poison"[..]));
            assert_eq!(get("x-trace"), "keep-me");
            assert_eq!(get("event-type"), "order.created");
        }
    }

    // Everything is committed: a new member of the group finds nothing left.
    let probe = Consumer::connect(&config(&kafka, &group)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..3)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed: i64 = probe
        .committed(&tps)
        .await
        .unwrap()
        .iter()
        .map(|(_, o)| o.unwrap_or(0))
        .sum();
    assert_eq!(committed, i64::try_from(sent).unwrap());

    // /metrics over HTTP agrees with what happened.
    let text = scrape(server.local_addr()).await;
    let t = format!("topic=\"{topic}\"");
    assert_eq!(
        sample_sum(&text, "kafka_messages_consumed_total", &[&t]),
        sent as f64
    );
    assert_eq!(
        sample_sum(
            &text,
            "kafka_messages_handled_total",
            &[&t, "outcome=\"processed\""]
        ),
        30.0
    );
    assert_eq!(
        sample_sum(&text, "kafka_messages_dead_lettered_total", &[&t]),
        3.0
    );
    assert_eq!(sample_sum(&text, "kafka_message_retries_total", &[&t]), 6.0);
    assert_eq!(
        sample_sum(
            &text,
            "kafka_messages_produced_total",
            &[&format!("topic=\"{dlq}\""), "status=\"success\""]
        ),
        3.0
    );
    assert_eq!(
        sample_sum(
            &text,
            "kafka_message_processing_duration_seconds_count",
            &[&t]
        ),
        sent as f64
    );
    assert!(
        text.contains(&format!("consumer_group=\"{group}\"")),
        "{text}"
    );
    // The consumer's own statistics, reported by the Worker (last at shutdown).
    let g = format!("consumer_group=\"{group}\"");
    assert_eq!(
        sample_sum(&text, "gregor_consumer_records_total", &[&g]),
        sent as f64
    );
    assert!(sample_sum(&text, "gregor_consumer_commits_total", &[&g]) >= 1.0);
    assert_eq!(
        sample_sum(&text, "gregor_consumer_rebalances_total", &[&g]),
        1.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_nothing_with_key_concurrency() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("w-load");
    create_topic(kafka.bootstrap(), &topic, 3, 1).await.unwrap();
    let group = unique_topic("w-load-group");
    let producer = Producer::connect(&config(&kafka, &group)).await.unwrap();
    const N: usize = 3000;
    let records: Vec<ProducerRecord> = (0..N)
        .map(|i| {
            record(
                &topic,
                &order(i).to_event("test").unwrap(),
                &format!("u-{}", i % 50),
            )
        })
        .collect();
    for r in producer.send_batch(records).await {
        r.unwrap();
    }

    let seen: Seen = Arc::default();
    let build = |seen: Seen| {
        let h = handler_fn(move |m: Message| {
            let seen = Arc::clone(&seen);
            async move {
                tokio::time::sleep(Duration::from_micros(300)).await;
                seen.lock().unwrap().push((m.partition(), m.offset()));
                Ok::<(), Error>(())
            }
        });
        Stack::new(h).build()
    };
    let worker = Worker::builder(config(&kafka, &group))
        .topics([topic.clone()])
        .handler(build(Arc::clone(&seen)))
        .key_concurrency(4)
        .max_in_flight(200)
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    wait_until("some progress", Duration::from_secs(60), || {
        seen.lock().unwrap().len() >= N / 4
    })
    .await;
    stop.trigger(); // mid-stream, records in flight on every partition
    let first = run.await.unwrap().unwrap();
    let after_first = seen.lock().unwrap().len();
    assert!(
        after_first < N,
        "the shutdown came before the end ({after_first})"
    );
    assert_eq!(
        first.records as usize, after_first,
        "every record taken was finished"
    );

    // A second member of the group resumes from the commits and finishes the rest.
    let worker = Worker::builder(config(&kafka, &group))
        .topics([topic.clone()])
        .handler(build(Arc::clone(&seen)))
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    let all: BTreeSet<(i32, i64)> = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let set: BTreeSet<(i32, i64)> = seen.lock().unwrap().iter().copied().collect();
            if set.len() >= N || Instant::now() > deadline {
                break set;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    stop.trigger();
    let second = run.await.unwrap().unwrap();
    assert_eq!(all.len(), N, "every record processed at least once");
    let total = seen.lock().unwrap().len();
    // Graceful shutdown committed what was done: the second member re-read nothing.
    assert_eq!(
        total,
        N,
        "duplicates after a graceful shutdown: {}",
        total - N
    );
    assert_eq!(first.records + second.records, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handler_commits_up_to_the_failed_index_and_the_fallback_takes_that_record() {
    use gregor::worker::{Batch, BatchError, batch_handler_fn};
    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("w-batch");
    let dlq = format!("{topic}.dlq");
    create_topic(kafka.bootstrap(), &topic, 1, 1).await.unwrap();
    create_topic(kafka.bootstrap(), &dlq, 1, 1).await.unwrap();
    let group = unique_topic("w-batch-group");
    let producer = Arc::new(Producer::connect(&config(&kafka, &group)).await.unwrap());
    let records: Vec<ProducerRecord> = (0..50)
        .map(|i| record(&topic, &order(i).to_event("test").unwrap(), "u-1"))
        .collect();
    for r in producer.send_batch(records).await {
        r.unwrap();
    }

    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (h, b) = (Arc::clone(&handled), Arc::clone(&batches));
    let handler = batch_handler_fn(move |batch: Batch| {
        let (h, b) = (Arc::clone(&h), Arc::clone(&b));
        async move {
            b.lock().unwrap().push(batch.messages.len());
            for (i, m) in batch.messages.iter().enumerate() {
                let o = OrderEvent::from_event(m.event().map_err(|e| BatchError::new(i, e))?)
                    .map_err(|e| BatchError::new(i, Error::validation(e.to_string())))?;
                if o.order_id == "o-7" {
                    return Err(BatchError::new(
                        i,
                        Error::validation("order o-7 is refused"),
                    ));
                }
                h.lock().unwrap().push(m.offset());
            }
            Ok(())
        }
    });
    // The record a batch fails at goes through retry + dead-letter.
    let fallback = Stack::new(handler_fn(|_m: Message| async {
        Err::<(), Error>(Error::validation("order o-7 is refused"))
    }))
    .dead_letter(DeadLetterLayer::new(Arc::new(ProducerPublisher::new(
        Arc::clone(&producer),
    ))))
    .retry(
        RetryLayer::new()
            .max_attempts(2)
            .backoff(Duration::from_millis(10), 2.0),
    )
    .build();
    let worker = Worker::builder(config(&kafka, &group))
        .topics([topic.clone()])
        .codecs(Arc::new(
            CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        ))
        .batch_handler(handler, 20, Some(fallback))
        .commit_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    wait_until("49 handled in batches", Duration::from_secs(60), || {
        handled.lock().unwrap().len() >= 49
    })
    .await;
    let dead = read_all(&kafka, &dlq, 1, 1).await;
    stop.trigger();
    let stats = run.await.unwrap().unwrap();
    assert_eq!(stats.records, 50);
    assert_eq!(stats.dead_lettered, 1);
    assert_eq!(stats.processed, 49);
    assert!(
        batches.lock().unwrap().iter().all(|n| *n <= 20),
        "{:?}",
        batches.lock().unwrap()
    );
    let mut offsets = handled.lock().unwrap().clone();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 49, "every other record once");
    assert!(!offsets.contains(&7));
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0]
            .header("original_offset")
            .and_then(|h| h.value.clone())
            .as_deref(),
        Some(&b"7"[..])
    );
    let probe = Consumer::connect(&config(&kafka, &group)).await.unwrap();
    let committed = probe
        .committed(&[TopicPartition::new(topic.as_str(), 0)])
        .await
        .unwrap();
    assert_eq!(committed[0].1, Some(50));
}
