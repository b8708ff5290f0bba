//! gregor's Producer, Consumer and Worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use gregor_client::{ClientConfig, Consumer, Producer, ProducerRecord};

use crate::{Counters, FETCH, KEYS, Outcome, Workload, due, keys, latency_ms, stamped, values};

fn producer_config(w: &Workload) -> Result<ClientConfig> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)?
        .set("client.id", "bench-gregor")?
        .set("acks", "all")?
        .set("linger.ms", &w.linger_ms)?
        .set("batch.size", &w.batch_bytes)?
        .set("max.request.size", &w.batch_bytes)?
        .set("batch.num.messages", "10000")?
        .set("queue.buffering.max.messages", "100000")?
        .set("max.in.flight.requests.per.connection", "5")?
        .set("compression.type", &w.compression)?)
}

fn consumer_config_of(w: &Workload) -> Result<ClientConfig> {
    consumer_config(&w.bootstrap, &w.group)
}

/// The consumer settings every gregor consumer of the bench uses: a group reading from the
/// earliest offset without auto-commit, with the shared fetch settings.
pub fn consumer_config(bootstrap: &str, group: &str) -> Result<ClientConfig> {
    let mut c = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)?
        .set("group.id", group)?
        .set("auto.offset.reset", "earliest")?
        .set("enable.auto.commit", "false")?
        .set("fetch.max.wait.ms", "500")?;
    for (k, v) in FETCH {
        c = c.set(k, *v)?;
    }
    Ok(c)
}

async fn producer(w: &Workload, counters: &Arc<Counters>) -> Result<Producer> {
    let c = Arc::clone(counters);
    let p = Producer::builder(&producer_config(w)?)
        .on_delivery(move |d| c.count(d.result.is_ok()))
        .build()
        .await?;
    // Metadata and connections before the clock starts.
    p.partitions(&w.topic).await?;
    Ok(p)
}

/// `produce` mode.
pub async fn produce(w: &Workload) -> Result<Outcome> {
    let counters = Counters::shared();
    let producer = producer(w, &counters).await?;
    let values = values(w.records, w.size);
    let keys = keys();
    let topic: Arc<str> = Arc::from(w.topic.as_str());
    let start = Instant::now();
    for i in 0..w.records {
        let record = ProducerRecord::new(Arc::clone(&topic), values[i % values.len()].clone())
            .key(keys[i % KEYS].clone());
        producer.produce(record).await?;
    }
    producer.flush().await;
    let seconds = start.elapsed().as_secs_f64();
    producer.close().await?;
    let records = counters.acked.load(Ordering::Relaxed);
    Ok(Outcome {
        records,
        bytes: records * w.size as u64,
        seconds,
        errors: counters.errors.load(Ordering::Relaxed),
        samples: Vec::new(),
    })
}

/// `consume` mode: a group of one.
pub async fn consume(w: &Workload) -> Result<Outcome> {
    let mut consumer = Consumer::connect(&consumer_config_of(w)?).await?;
    consumer.subscribe(&[w.topic.as_str()])?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut start = None;
    while n < w.records as u64 {
        let r = consumer.recv().await?;
        start.get_or_insert_with(Instant::now);
        n += 1;
        bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    consumer.close().await?;
    Ok(Outcome {
        records: n,
        bytes,
        seconds,
        ..Outcome::default()
    })
}

/// `latency` mode.
pub async fn latency(w: &Workload) -> Result<Outcome> {
    let total = w.rate * w.seconds as usize;
    let mut consumer = Consumer::connect(&consumer_config_of(w)?).await?;
    consumer.subscribe(&[w.topic.as_str()])?;
    let deadline = Duration::from_secs(w.seconds + 30);
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total);
        let read = tokio::time::timeout(deadline, async {
            while samples.len() < total {
                let r = consumer.recv().await?;
                if let Some(ms) = r.value.as_deref().and_then(latency_ms) {
                    samples.push(ms);
                }
            }
            anyhow::Ok(())
        })
        .await;
        match read {
            Ok(Err(e)) => eprintln!("consumer stopped after {} records: {e}", samples.len()),
            Err(_) => eprintln!("consumer timed out after {} records", samples.len()),
            Ok(Ok(())) => {}
        }
        let _ = consumer.close().await;
        samples
    });
    let counters = Counters::shared();
    let producer = producer(w, &counters).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // let the consumer join first
    let keys = keys();
    let topic: Arc<str> = Arc::from(w.topic.as_str());
    let start = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(due(start, w.rate, i).into()).await;
        let record = ProducerRecord::new(Arc::clone(&topic), bytes::Bytes::from(stamped(w.size)))
            .key(keys[i % KEYS].clone());
        producer.produce(record).await?;
    }
    producer.flush().await;
    let samples = receiver.await?;
    let seconds = start.elapsed().as_secs_f64();
    producer.close().await?;
    Ok(Outcome {
        records: samples.len() as u64,
        bytes: samples.len() as u64 * w.size as u64,
        seconds,
        errors: counters.errors.load(Ordering::Relaxed),
        samples,
    })
}

/// `worker` mode: the consume workload through gregor's Worker with the default middleware
/// stack (recover, metrics, tracing, dead-letter to a real producer, retry, timeout) around a
/// no-op handler: what a service built on gregor pays per record on top of the bare consumer.
pub async fn worker(w: &Workload) -> Result<Outcome> {
    use gregor::handler::dead_letter::DeadLetterLayer;
    use gregor::handler::metrics::Metrics;
    use gregor::handler::retry::RetryLayer;
    use gregor::handler::{Error, Message, Stack, handler_fn};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    let target = w.records as u64;
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let last: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (c, b, f, l) = (
        Arc::clone(&count),
        Arc::clone(&bytes),
        Arc::clone(&first),
        Arc::clone(&last),
    );
    let noop = handler_fn(move |m: Message| {
        let len = m.value().map_or(0, |v| v.len() as u64);
        b.fetch_add(len, Ordering::Relaxed);
        let seen = c.fetch_add(1, Ordering::Relaxed) + 1;
        if seen == 1
            && let Ok(mut g) = f.lock()
        {
            *g = Some(Instant::now());
        }
        if seen == target
            && let Ok(mut g) = l.lock()
        {
            *g = Some(Instant::now());
        }
        async { Ok::<(), Error>(()) }
    });
    let dlq = Arc::new(Producer::connect(&producer_config(w)?).await?);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let handler = Stack::new(noop)
        .metrics(metrics.layer())
        .tracing()
        .dead_letter(DeadLetterLayer::new(Arc::new(
            gregor::ProducerPublisher::new(Arc::clone(&dlq)),
        )))
        .retry(RetryLayer::new())
        .timeout(Duration::from_secs(30))
        .build();
    let worker = gregor::Worker::builder(consumer_config_of(w)?)
        .topics([w.topic.clone()])
        .handler(handler)
        .metrics(metrics)
        .build()
        .await?;
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    while count.load(Ordering::Relaxed) < target {
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.trigger();
    let stats = run.await??;
    let seconds = match (
        first.lock().ok().and_then(|g| *g),
        last.lock().ok().and_then(|g| *g),
    ) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    Ok(Outcome {
        records: stats.processed.min(target),
        bytes: bytes.load(Ordering::Relaxed),
        seconds,
        ..Outcome::default()
    })
}
