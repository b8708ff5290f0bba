//! gregor's Producer and Consumer.

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

fn consumer_config(w: &Workload) -> Result<ClientConfig> {
    let mut c = ClientConfig::new()
        .set("bootstrap.servers", &w.bootstrap)?
        .set("group.id", &w.group)?
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
    let mut consumer = Consumer::connect(&consumer_config(w)?).await?;
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
    Ok(Outcome { records: n, bytes, seconds, ..Outcome::default() })
}

/// `latency` mode.
pub async fn latency(w: &Workload) -> Result<Outcome> {
    let total = w.rate * w.seconds as usize;
    let mut consumer = Consumer::connect(&consumer_config(w)?).await?;
    consumer.subscribe(&[w.topic.as_str()])?;
    let deadline = Duration::from_secs(w.seconds + 30);
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total);
        let _ = tokio::time::timeout(deadline, async {
            while samples.len() < total {
                let r = consumer.recv().await?;
                if let Some(ms) = r.value.as_deref().and_then(latency_ms) {
                    samples.push(ms);
                }
            }
            anyhow::Ok(())
        })
        .await;
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
