//! rust-rdkafka (librdkafka): ThreadedProducer with partitioner murmur2_random, StreamConsumer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rdkafka::ClientContext;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;

use crate::{Counters, FETCH, KEYS, Outcome, Workload, due, keys, latency_ms, stamped, values};

/// Delivery counting context.
pub struct Counting(Arc<Counters>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.0.count(result.is_ok());
    }
}

fn producer(w: &Workload, counters: &Arc<Counters>) -> Result<ThreadedProducer<Counting>> {
    let p: ThreadedProducer<Counting> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)
        .set("client.id", "bench-rdkafka")
        .set("acks", "all")
        .set("linger.ms", &w.linger_ms)
        .set("batch.size", &w.batch_bytes)
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "100000")
        .set("max.in.flight.requests.per.connection", "5")
        .set("enable.idempotence", "false")
        .set("compression.type", &w.compression)
        .set("partitioner", "murmur2_random")
        .create_with_context(Counting(Arc::clone(counters)))?;
    p.client()
        .fetch_metadata(Some(&w.topic), Duration::from_secs(30))?;
    Ok(p)
}

fn send(p: &ThreadedProducer<Counting>, topic: &str, key: &[u8], value: &[u8]) -> Result<()> {
    let mut record = BaseRecord::to(topic).payload(value).key(key);
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                #[allow(
                    clippy::disallowed_methods,
                    reason = "waiting for librdkafka's queue to drain"
                )]
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("rdkafka send: {e}"),
        }
    }
}

fn consumer(w: &Workload) -> Result<StreamConsumer> {
    let mut cfg = rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", &w.bootstrap)
        .set("group.id", &w.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "500");
    for (k, v) in FETCH {
        cfg.set(*k, *v);
    }
    let c: StreamConsumer = cfg.create()?;
    c.subscribe(&[&w.topic])?;
    Ok(c)
}

/// `produce` mode.
pub fn produce(w: &Workload) -> Result<Outcome> {
    let counters = Counters::shared();
    let p = producer(w, &counters)?;
    let values = values(w.records, w.size);
    let keys = keys();
    let start = Instant::now();
    for i in 0..w.records {
        send(&p, &w.topic, &keys[i % KEYS], &values[i % values.len()])?;
    }
    p.flush(Duration::from_secs(120))?;
    let seconds = start.elapsed().as_secs_f64();
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
    let c = consumer(w)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut start = None;
    while n < w.records as u64 {
        let m = c.recv().await?;
        start.get_or_insert_with(Instant::now);
        n += 1;
        bytes += m.payload().map_or(0, |v| v.len() as u64);
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
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
    let c = consumer(w)?;
    let deadline = Duration::from_secs(w.seconds + 30);
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total);
        let _ = tokio::time::timeout(deadline, async {
            while samples.len() < total {
                let m = c.recv().await?;
                if let Some(ms) = m.payload().and_then(latency_ms) {
                    samples.push(ms);
                }
            }
            anyhow::Ok(())
        })
        .await;
        samples
    });
    let counters = Counters::shared();
    let p = producer(w, &counters)?;
    tokio::time::sleep(Duration::from_secs(2)).await; // let the consumer join first
    let keys = keys();
    let start = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until(due(start, w.rate, i).into()).await;
        send(&p, &w.topic, &keys[i % KEYS], &stamped(w.size))?;
    }
    p.flush(Duration::from_secs(60))?;
    let samples = receiver.await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Outcome {
        records: samples.len() as u64,
        bytes: samples.len() as u64 * w.size as u64,
        seconds,
        errors: counters.errors.load(Ordering::Relaxed),
        samples,
    })
}
