//! Delivering one batch: rskafka's produce (acks=-1), retried with exponential backoff while
//! the error is retriable, `retries` allows and `delivery.timeout.ms` has not passed; a batch
//! the broker finds too large is split in halves; then each record's outcome goes out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rskafka::chrono::{DateTime, Utc};

use super::accumulator::{Done, PartitionState, Pending};
use super::record::{Delivery, ProducerRecord, RecordMetadata};
use super::{Shared, replicate};
use crate::error::{Context, Error, KafkaCode, Result};

/// Sends `batch` and reports every record's outcome.
pub(crate) async fn deliver(shared: Arc<Shared>, part: Arc<PartitionState>, batch: Vec<Pending>) {
    let mut work = vec![batch];
    while let Some(batch) = work.pop() {
        match send_with_retries(&shared, &part, &batch).await {
            Ok(base) => succeed(&shared, &part, batch, base),
            Err(e) if e.code() == Some(KafkaCode::MESSAGE_TOO_LARGE) && batch.len() > 1 => {
                // The topic's max.message.bytes is below our batch: halve and send in order.
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                work.push(second);
                work.push(first);
            }
            Err(e) => fail(&shared, &part, batch, &e),
        }
    }
}

/// The batch's offsets' base on success; the last error otherwise.
async fn send_with_retries(
    shared: &Shared,
    part: &PartitionState,
    batch: &[Pending],
) -> Result<i64> {
    let s = &shared.settings;
    let context = || Context::partition(&*part.topic, part.partition);
    let first = batch
        .iter()
        .map(|p| p.enqueued)
        .min()
        .unwrap_or_else(Instant::now);
    let deadline = first + s.delivery_timeout;
    let mut backoff = s.backoff;
    let mut attempts: u32 = 0;
    loop {
        let now = Instant::now();
        let Some(remaining) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Err(Error::Timeout {
                what: "delivery".into(),
                context: Box::new(context()),
                after: s.delivery_timeout,
            });
        };
        let limit = remaining.min(s.request_timeout);
        let attempt = async {
            let client = part.client(shared).await?;
            let records = to_rskafka(batch);
            client
                .produce(records, s.compression)
                .await
                .map_err(|e| Error::from_rskafka(e, context()))
        };
        let error = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(offsets)) => {
                return offsets.first().copied().ok_or_else(|| Error::Protocol {
                    broker: format!("leader of {}/{}", part.topic, part.partition),
                    message: "produce response without offsets".into(),
                });
            }
            Ok(Err(e)) => e,
            Err(_) => Error::Timeout {
                what: "produce request".into(),
                context: Box::new(context()),
                after: limit,
            },
        };
        let timed_out = deadline <= Instant::now();
        if !error.is_retriable() || attempts >= s.retries || timed_out {
            if timed_out && error.is_retriable() {
                return Err(Error::Timeout {
                    what: format!("delivery (last error: {error})"),
                    context: Box::new(context()),
                    after: s.delivery_timeout,
                });
            }
            return Err(error);
        }
        attempts += 1;
        shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %part.topic, partition = part.partition, %error, attempt = attempts, "retrying a batch");
        let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        backoff = next_backoff(backoff, s.backoff_max);
    }
}

fn next_backoff(current: Duration, max: Duration) -> Duration {
    (current * 2)
        .min(max.max(current))
        .max(Duration::from_millis(1))
}

/// The batch as rskafka records: keys and values copied (rskafka owns `Vec<u8>`s), headers
/// folded into rskafka's map (duplicate keys: the last wins; a null value becomes empty).
fn to_rskafka(batch: &[Pending]) -> Vec<rskafka::record::Record> {
    batch
        .iter()
        .map(|p| rskafka::record::Record {
            key: p.key.as_ref().map(|k| k.to_vec()),
            value: p.value.as_ref().map(|v| v.to_vec()),
            headers: p
                .headers
                .iter()
                .map(|h| {
                    (
                        h.key.clone(),
                        h.value.as_ref().map(|v| v.to_vec()).unwrap_or_default(),
                    )
                })
                .collect(),
            // Checked when the record was accepted.
            timestamp: DateTime::<Utc>::from_timestamp_millis(p.timestamp).unwrap_or_default(),
        })
        .collect()
}

fn succeed(shared: &Shared, part: &PartitionState, batch: Vec<Pending>, base: i64) {
    let now = Instant::now();
    let n = batch.len();
    let bytes: u64 = batch.iter().map(|p| p.payload).sum();
    let size: usize = batch.iter().map(|p| p.size).sum();
    // Counters first, so a caller woken by its result sees them.
    let c = &shared.counters;
    c.records.fetch_add(n as u64, Ordering::Relaxed);
    c.bytes.fetch_add(bytes, Ordering::Relaxed);
    c.batches.fetch_add(1, Ordering::Relaxed);
    let pc = &part.counters;
    pc.records.fetch_add(n as u64, Ordering::Relaxed);
    pc.bytes.fetch_add(bytes, Ordering::Relaxed);
    pc.batches.fetch_add(1, Ordering::Relaxed);
    let mut waiting = Vec::new();
    for (i, p) in batch.into_iter().enumerate() {
        c.latency.record(now - p.enqueued, 1);
        let meta = RecordMetadata {
            topic: Arc::clone(&part.topic),
            partition: part.partition,
            offset: base + i as i64,
            timestamp: p.timestamp,
        };
        report(shared, part, p, Ok(meta), &mut waiting);
    }
    settle(shared, size, n, waiting);
}

/// Callbacks have run: the records stop counting as outstanding (flush() may return), then the
/// waiting futures resolve, so a caller woken by its result sees its record no longer queued.
fn settle(shared: &Shared, size: usize, n: usize, waiting: Vec<Waiting>) {
    shared.release(size, n);
    shared.finished(n as u64);
    for (tx, result) in waiting {
        // The caller may have stopped waiting; the outcome is in the stats either way.
        let _ = tx.send(result);
    }
}

fn fail(shared: &Shared, part: &PartitionState, batch: Vec<Pending>, error: &Error) {
    let n = batch.len();
    let size: usize = batch.iter().map(|p| p.size).sum();
    let unreported = batch
        .iter()
        .filter(|p| matches!(p.done, Done::Report))
        .count();
    shared
        .counters
        .errors
        .fetch_add(n as u64, Ordering::Relaxed);
    part.counters.errors.fetch_add(n as u64, Ordering::Relaxed);
    if unreported > 0 && shared.callback().is_none() {
        tracing::error!(
            topic = %part.topic,
            partition = part.partition,
            records = unreported,
            %error,
            "records sent with produce() failed and no delivery callback is set"
        );
    }
    let mut waiting = Vec::new();
    for p in batch {
        report(shared, part, p, Err(replicate(error)), &mut waiting);
    }
    settle(shared, size, n, waiting);
}

type Waiting = (
    tokio::sync::oneshot::Sender<Result<RecordMetadata>>,
    Result<RecordMetadata>,
);

/// Calls the delivery callback now, or sets a waiting future's result aside for [`settle`].
fn report(
    shared: &Shared,
    part: &PartitionState,
    p: Pending,
    result: Result<RecordMetadata>,
    waiting: &mut Vec<Waiting>,
) {
    match p.done {
        Done::Wait(tx) => waiting.push((tx, result)),
        Done::Report => {
            if let Some(callback) = shared.callback() {
                callback(Delivery {
                    record: ProducerRecord {
                        topic: Arc::clone(&part.topic),
                        partition: Some(part.partition),
                        key: p.key,
                        value: p.value,
                        headers: p.headers,
                        timestamp: Some(p.timestamp),
                    },
                    result,
                });
            }
        }
    }
}
