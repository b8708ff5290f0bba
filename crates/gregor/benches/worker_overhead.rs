//! Worker overhead: records/s through decode + a no-op handler with the default stack, against
//! the bare consumer, on the same broker, topic and records, in interleaved rounds.
//!
//! ```text
//! cargo bench -p gregor --bench worker_overhead                 # 200,000 records, 3 rounds
//! cargo bench -p gregor --bench worker_overhead -- 300000 5     # records, rounds
//! ```
//!
//! After one uncounted warm-up pass (the broker's JIT), each round reads the whole topic with
//! a fresh consumer group, once per way, in the same order; time runs from the first record to the last, so joining the group is not counted.
//! The bare consumer polls and commits every 500 ms (as the worker does); once it only counts
//! the records, once it also decodes each value as a JSON `Event` with the same codec the
//! worker uses. The worker runs in three ways: raw records into a no-op handler with no
//! layers; raw records through the default stack (recover, metrics, tracing, dead-letter,
//! retry, timeout, router, recover); and each record decoded as a JSON Event, then the
//! default stack. The overhead of the stack is read against the bare way that does the same
//! work: raw against raw, decoded against decoded.
//!
//! `BENCH_ONLY=<i>` runs only way `i` besides the two bare ways; `BENCH_MAX_IN_FLIGHT` sets the
//! worker's `max_in_flight`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gregor::Worker;
use gregor::client::{ClientConfig, Consumer, Producer, ProducerRecord};
use gregor::codec::{CodecRegistry, Context as CodecContext, Deserializer, JsonCodec};
use gregor::event::{Event, Headers};
use gregor::event::{Item, Money, OrderEvent, OrderStatus, TypedEvent};
use gregor::handler::dead_letter::{DeadLetterLayer, DeadLetterRecord, Publisher};
use gregor::handler::metrics::Metrics;
use gregor::handler::retry::RetryLayer;
use gregor::handler::{BoxError, Error, Fallback, Message, Router, Stack, handler_fn};
use gregor_testkit::{Kafka, create_topic, unique_topic};

const PARTITIONS: i32 = 3;

/// Never called in this run (no record fails); stands in for the producer-backed publisher so
/// the stack has its dead-letter layer.
struct Unused;
impl Publisher for Unused {
    fn publish(
        &self,
        _record: DeadLetterRecord,
    ) -> futures::future::BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async { Err("no record should fail in the benchmark".into()) })
    }
}

fn config(kafka: &Kafka, group: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .and_then(|c| c.set("group.id", group))
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .and_then(|c| c.set("enable.auto.commit", "false"))
        .expect("valid config")
}

async fn fill(kafka: &Kafka, topic: &str, n: u64) -> u64 {
    let producer = Producer::connect(&config(kafka, "unused"))
        .await
        .expect("producer");
    let price = Money::from_cents(1299).expect("money");
    let mut bytes = 0u64;
    let mut pending = Vec::new();
    for i in 0..n {
        let order = OrderEvent {
            order_id: format!("o-{i}"),
            user_id: format!("u-{}", i % 1000),
            status: OrderStatus::Created,
            amount: price,
            items: vec![Item {
                product_id: format!("p-{}", i % 97),
                quantity: 1,
                price,
            }],
            created_at: gregor::event::time::now(),
        };
        let event = order.to_event("bench").expect("event");
        let value = event.to_json().expect("json").into_bytes();
        bytes += value.len() as u64;
        let mut r = ProducerRecord::new(topic, value).key(order.user_id.clone());
        for h in event.headers(Some(1)) {
            r = r.header(h.key, h.value.unwrap_or_default());
        }
        pending.push(producer.enqueue(r).await.expect("enqueue"));
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                d.await.expect("delivered");
            }
        }
    }
    for d in pending {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close");
    bytes
}

async fn bare(kafka: &Kafka, topic: &str, n: u64, decode: bool) -> Timed {
    let mut c = Consumer::connect(&config(kafka, &unique_topic("bench-bare")))
        .await
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let codec = JsonCodec::new();
    let no_headers = Headers::new();
    let mut seen = 0u64;
    let mut first = None;
    let mut last_commit = Instant::now();
    while seen < n {
        let batch = c.poll(Duration::from_millis(100)).await.expect("poll");
        if !batch.is_empty() && first.is_none() {
            first = Some((Instant::now(), cpu()));
        }
        seen += batch.len() as u64;
        if decode {
            for r in &batch {
                let ctx = CodecContext::new(&r.topic).at(r.partition, r.offset);
                let value = r.value.as_deref().unwrap_or_default();
                let event: Event =
                    Deserializer::<Event>::deserialize(&codec, &ctx, &no_headers, value)
                        .await
                        .expect("the benchmark's records decode");
                std::hint::black_box(Arc::new(event));
            }
        }
        std::hint::black_box(&batch);
        if last_commit.elapsed() >= Duration::from_millis(500) {
            c.commit().await.expect("commit");
            last_commit = Instant::now();
        }
    }
    let took = first.map_or(Timed::default(), |(at, c)| Timed {
        wall: at.elapsed(),
        cpu: cpu() - c,
    });
    c.commit().await.expect("commit");
    c.close().await.expect("close");
    took
}

async fn worker(kafka: &Kafka, topic: &str, n: u64, decode: bool, stack: bool) -> Timed {
    let count = Arc::new(AtomicU64::new(0));
    let first: Arc<std::sync::Mutex<Option<(Instant, f64)>>> = Arc::default();
    let done: Arc<std::sync::Mutex<Option<(Instant, f64)>>> = Arc::default();
    let (c, f, d) = (Arc::clone(&count), Arc::clone(&first), Arc::clone(&done));
    let noop = handler_fn(move |m: Message| {
        let seen = c.fetch_add(1, Ordering::Relaxed) + 1;
        if seen == 1
            && let Ok(mut g) = f.lock()
        {
            *g = Some((Instant::now(), cpu()));
        }
        if seen == n
            && let Ok(mut g) = d.lock()
        {
            *g = Some((Instant::now(), cpu()));
        }
        std::hint::black_box(m.event_arc());
        async { Ok::<(), Error>(()) }
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let handler = if stack {
        Stack::new(
            Router::new()
                .route("order.created", noop)
                .fallback(Fallback::DeadLetter),
        )
        .metrics(metrics.layer())
        .tracing()
        .dead_letter(DeadLetterLayer::new(Arc::new(Unused)))
        .retry(RetryLayer::new())
        .timeout(Duration::from_secs(30))
        .build()
    } else {
        gregor::handler::boxed(noop)
    };
    let mut builder = Worker::builder(config(kafka, &unique_topic("bench-worker")))
        .topics([topic.to_owned()])
        .handler(handler)
        .metrics(metrics);
    if let Some(m) = std::env::var("BENCH_MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.max_in_flight(m);
    }
    if decode {
        builder = builder.codecs(Arc::new(
            CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        ));
    }
    let w = builder.build().await.expect("worker");
    let stop = w.shutdown_handle();
    let run = tokio::spawn(w.run());
    while count.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.trigger();
    let stats = run.await.expect("join").expect("run");
    assert_eq!(stats.processed, n);
    let first = first.lock().ok().and_then(|g| *g).expect("first");
    let done = done.lock().ok().and_then(|g| *g).expect("done");
    Timed {
        wall: done.0 - first.0,
        cpu: done.1 - first.1,
    }
}

/// Wall time from the first record to the last, and the CPU time the whole process (consumer,
/// worker, handler; not the broker) spent meanwhile.
#[derive(Default)]
struct Timed {
    wall: Duration,
    cpu: f64,
}

/// CPU seconds this process has used (user + system, every thread), from /proc/self/stat in
/// clock ticks of 10 ms: a way that runs for a second or more reads it to about 1 %.
fn cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then one small round
    // checks that the benchmark still runs, and no figure is meant.
    let benching = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (default_n, default_rounds) = if benching { (200_000, 3) } else { (2_000, 1) };
    let n: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_n);
    let rounds: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_rounds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kafka = Kafka::shared().await.expect("local Kafka");
        let topic = unique_topic("bench-worker");
        create_topic(kafka.bootstrap(), &topic, PARTITIONS, 1)
            .await
            .expect("topic");
        let bytes = fill(&kafka, &topic, n).await;
        println!(
            "worker_overhead: {n} records ({} B of JSON each on average), {PARTITIONS} partitions, {rounds} rounds",
            bytes / n.max(1)
        );
        println!("load average at the start: {}", load());
        let variants: [(&str, Way); 5] = [
            ("bare consumer", Way::Bare { decode: false }),
            ("bare consumer + JSON decode", Way::Bare { decode: true }),
            ("worker, raw records, no layers", Way::Worker { decode: false, stack: false }),
            ("worker, raw records, default stack", Way::Worker { decode: false, stack: true }),
            ("worker, JSON decode + default stack", Way::Worker { decode: true, stack: true }),
        ];
        if benching {
            // One uncounted pass of every way first: a broker that has just started is still
            // compiling its fetch path (the JIT), and the first rounds would measure that.
            for (_, way) in &variants {
                let _warm_up: Timed = match *way {
                    Way::Bare { decode } => bare(&kafka, &topic, n, decode).await,
                    Way::Worker { decode, stack } => worker(&kafka, &topic, n, decode, stack).await,
                };
            }
            println!("warm-up pass done (not counted)");
        }
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 1..=rounds {
            for (i, (name, way)) in variants.iter().enumerate() {
                if let Ok(only) = std::env::var("BENCH_ONLY")
                    && only != i.to_string()
                    && i > 1
                {
                    rates[i].push(f64::NAN);
                    cpus[i].push(f64::NAN);
                    continue;
                }
                let took = match *way {
                    Way::Bare { decode } => bare(&kafka, &topic, n, decode).await,
                    Way::Worker { decode, stack } => worker(&kafka, &topic, n, decode, stack).await,
                };
                let rate = n as f64 / took.wall.as_secs_f64();
                let us = 1e6 * took.cpu / n as f64;
                println!(
                    "round {round}: {name:<38} {rate:>10.0} records/s {us:>6.2} µs CPU a record"
                );
                rates[i].push(rate);
                cpus[i].push(us);
            }
        }
        println!("load average at the end: {}", load());
        let summary: Vec<(f64, f64, f64)> = rates.iter().map(|r| spread(r.clone())).collect();
        println!("median (min to max) of {rounds} rounds:");
        for (i, ((name, _), (m, lo, hi))) in variants.iter().zip(&summary).enumerate() {
            let base = if i == 4 || i == 1 { summary[1].0 } else { summary[0].0 };
            println!(
                "  {name:<38} {m:>10.0} records/s ({lo:.0} to {hi:.0})  {:>6.1} % of the {}",
                100.0 * m / base,
                if i == 4 || i == 1 { "decoding bare consumer" } else { "bare consumer" }
            );
        }
        // CPU per record does not depend on how much of the two cores the process got.
        let cpu: Vec<f64> = cpus.iter().map(|c| spread(c.clone()).0).collect();
        println!("CPU of the process per record, median of {rounds} rounds:");
        for (i, ((name, _), us)) in variants.iter().zip(&cpu).enumerate() {
            let base = if i == 4 || i == 1 { cpu[1] } else { cpu[0] };
            println!(
                "  {name:<38} {us:>6.2} µs  {:>6.1} % of its bare way's",
                100.0 * us / base
            );
        }
        // Per-round ratios: each worker way against the bare way of the same round.
        let ratio = |w: usize, b: usize| {
            spread(
                rates[w]
                    .iter()
                    .zip(&rates[b])
                    .map(|(w, b)| 100.0 * w / b)
                    .collect(),
            )
        };
        let (raw, raw_lo, raw_hi) = ratio(3, 0);
        let (dec, dec_lo, dec_hi) = ratio(4, 1);
        println!(
            "  (a) raw: the default stack keeps {raw:.1} % of the bare consumer's throughput (rounds {raw_lo:.1} to {raw_hi:.1} %): it costs {:.1} %",
            100.0 - raw
        );
        println!(
            "  (b) with JSON decoding on both sides: {dec:.1} % (rounds {dec_lo:.1} to {dec_hi:.1} %): it costs {:.1} %",
            100.0 - dec
        );
    });
}

#[derive(Clone, Copy)]
enum Way {
    Bare { decode: bool },
    Worker { decode: bool, stack: bool },
}

/// Median, min and max, NaNs (ways not run) left out.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The 1, 5 and 15 minute load averages (the machine's two cores are shared with the broker).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
