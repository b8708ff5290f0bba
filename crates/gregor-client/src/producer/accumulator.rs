//! One accumulator per partition, and the task that turns it into batches.
//!
//! Senders append records under a short lock. The partition's task takes a batch when one of
//! `max.in.flight` request slots is free and the records are ready: `batch.size` bytes or
//! `batch.num.messages` records collected, the oldest waited `linger.ms`, or a flush or close
//! asks. While all slots are busy, records keep collecting, so one request carries up to
//! `max.request.size`: under load batches grow on their own.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use gregor_partition::Partitioner;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use tokio::sync::{Notify, OnceCell, oneshot};

use super::Shared;
use super::record::RecordMetadata;
use super::sender;
use super::settings::{BATCH_OVERHEAD, Settings};
use super::stats::PartitionCounters;
use crate::consumer::Header;
use crate::error::{Context, Error, Result};

/// Who learns a record's outcome.
pub(crate) enum Done {
    /// `send` / `enqueue`: the waiting future.
    Wait(oneshot::Sender<Result<RecordMetadata>>),
    /// `produce`: the delivery callback (or the log).
    Report,
}

/// A record accepted and not yet delivered.
pub(crate) struct Pending {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
    pub(crate) timestamp: i64,
    /// Estimated encoded size (buffer and batch accounting).
    pub(crate) size: usize,
    /// Key, value and header bytes (statistics).
    pub(crate) payload: u64,
    pub(crate) enqueued: Instant,
    pub(crate) done: Done,
}

#[derive(Default)]
struct Acc {
    records: Vec<Pending>,
    bytes: usize,
    oldest: Option<Instant>,
}

impl Acc {
    fn ready(&self, s: &Settings) -> bool {
        self.bytes >= s.batch_bytes || self.records.len() >= s.batch_records
    }

    /// The oldest records that fit one request.
    fn take(&mut self, s: &Settings, topic_len: usize) -> Vec<Pending> {
        let limit = s.max_request.saturating_sub(BATCH_OVERHEAD + topic_len);
        let mut bytes = 0;
        let mut n = 0;
        for r in &self.records {
            if n > 0 && (bytes + r.size > limit || n >= s.batch_records) {
                break;
            }
            bytes += r.size;
            n += 1;
        }
        let batch = if n == self.records.len() {
            std::mem::take(&mut self.records)
        } else {
            self.records.drain(..n).collect()
        };
        self.bytes -= bytes;
        self.oldest = self.records.first().map(|r| r.enqueued);
        batch
    }
}

/// A partition's accumulator, counters and rskafka client.
pub(crate) struct PartitionState {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    acc: Mutex<Acc>,
    pub(crate) wake: Notify,
    pub(crate) counters: PartitionCounters,
    client: OnceCell<Arc<PartitionClient>>,
}

impl PartitionState {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> PartitionState {
        PartitionState {
            topic,
            partition,
            acc: Mutex::default(),
            wake: Notify::new(),
            counters: PartitionCounters::default(),
            client: OnceCell::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Acc> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a record; wakes the task when the batch starts (linger timer) or becomes ready.
    pub(crate) fn append(&self, record: Pending, s: &Settings) {
        let mut acc = self.lock();
        let was_empty = acc.records.is_empty();
        let was_ready = acc.ready(s);
        if was_empty {
            acc.oldest = Some(record.enqueued);
        }
        acc.bytes += record.size;
        acc.records.push(record);
        let wake = was_empty || (!was_ready && acc.ready(s));
        drop(acc);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The rskafka client for this partition, created on first use (it finds the leader and
    /// follows it when leadership moves).
    pub(crate) async fn client(&self, shared: &Shared) -> Result<Arc<PartitionClient>> {
        self.client
            .get_or_try_init(|| async {
                let connect = || {
                    shared.client.partition_client(
                        &*self.topic,
                        self.partition,
                        UnknownTopicHandling::Error,
                    )
                };
                let client = match connect().await {
                    // rskafka answers from its cached cluster metadata, which does not know a
                    // partition added since: refresh that cache (an unfiltered Metadata
                    // request) and ask once more.
                    Err(rskafka::client::error::Error::InvalidResponse(_)) => {
                        shared
                            .client
                            .list_topics()
                            .await
                            .map_err(|e| self.error(e))?;
                        connect().await
                    }
                    other => other,
                };
                client.map(Arc::new).map_err(|e| self.error(e))
            })
            .await
            .cloned()
    }

    fn error(&self, e: rskafka::client::error::Error) -> Error {
        Error::from_rskafka(e, Context::partition(&*self.topic, self.partition))
    }
}

/// What the task should do next.
enum Next {
    Send(Vec<Pending>),
    WaitUntil(Instant),
    Wait,
    Exit,
}

/// The partition's task: takes ready batches and delivers them, at most `max.in.flight` at a
/// time. The deliveries run inside this task, first polled in the order their batches were
/// taken (FuturesUnordered polls new futures in push order), and nothing parks one between
/// that first poll and its request write except rskafka's fair (FIFO) locks: the partition
/// client's creation, the leader lookup, the connection's write half. So requests go out on the
/// leader's connection in batch order and records of one partition keep their order unless a
/// retry intervenes (as in the Java client without idempotence). Ends at shutdown once the
/// accumulator is empty and every delivery has finished.
pub(crate) async fn run(
    shared: Arc<Shared>,
    part: Arc<PartitionState>,
    partitioner: Arc<dyn Partitioner>,
) {
    let s = &shared.settings;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let next = if in_flight.len() >= s.in_flight {
            Next::Wait
        } else {
            let mut acc = part.lock();
            match acc.oldest {
                None if shared.shutdown.load(Ordering::SeqCst) => Next::Exit,
                None => Next::Wait,
                Some(oldest) => {
                    let due = oldest + s.linger;
                    if acc.ready(s)
                        || Instant::now() >= due
                        || shared.flushing.load(Ordering::SeqCst) > 0
                        || shared.shutdown.load(Ordering::SeqCst)
                    {
                        Next::Send(acc.take(s, part.topic.len()))
                    } else {
                        Next::WaitUntil(due)
                    }
                }
            }
        };
        let due = match next {
            Next::Send(batch) => {
                // KIP-480: the sticky partitioner moves on once a batch of its partition is sealed.
                partitioner.batch_sealed(part.partition);
                // Unconstrained: tokio's cooperative budget must not park a delivery between
                // its first poll and its request write, or a later one could write first.
                in_flight.push(tokio::task::unconstrained(sender::deliver(
                    Arc::clone(&shared),
                    Arc::clone(&part),
                    batch,
                )));
                continue;
            }
            Next::Exit if in_flight.is_empty() => return,
            Next::Exit | Next::Wait => None,
            Next::WaitUntil(due) => Some(due),
        };
        let linger = async {
            match due {
                Some(due) => tokio::time::sleep_until(due.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            () = part.wake.notified() => {}
            () = linger => {}
        }
    }
}
