//! `Producer`: batching per partition, compression, bounded buffering with backpressure,
//! retries within a delivery timeout, delivery results, flush and close. Records go to the
//! broker through rskafka; metadata (partition counts) through gregor's own connection.
//!
//! ```text
//! send / enqueue / produce
//!   │ closed? too large? ─▶ error at once
//!   ▼
//! buffer.memory + queue.buffering.max.messages (semaphores: wait up to max.block.ms)
//!   ▼
//! topic metadata (cached; refreshed every metadata.max.age.ms) ─▶ partitioner (one per topic)
//!   ▼
//! partition accumulator ──(linger.ms passed, batch.size reached, flush, close)──▶ partition task
//!   │                                                  │ batch_sealed(p) (sticky moves on)
//!   │                                                  ▼ one of max.in.flight slots
//!   │                                            deliver: rskafka produce (acks=-1)
//!   │                                              retriable error: backoff, again
//!   │                                              MESSAGE_TOO_LARGE: split the batch
//!   │                                              past delivery.timeout.ms: fail
//!   ▼                                                  ▼
//! DeliveryFuture / delivery callback ◀──── metadata (offset) or the error, per record
//! ```

mod accumulator;
mod record;
mod sender;
mod settings;
mod stats;
mod topics;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gregor_partition::{RecordView, Strategy};
use rskafka::BackoffConfig;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::config::ClientConfig;
use crate::consumer::Header;
use crate::error::{Context, Error, KafkaCode, Result};
use crate::wire::pool::Brokers;

pub use record::{Delivery, DeliveryFuture, ProducerRecord, RecordMetadata};
pub use stats::{LatencyHistogram, PartitionStats, ProducerStats};

use accumulator::{Done, Pending};
use settings::{BATCH_OVERHEAD, Settings};
use stats::Counters;
use topics::TopicState;

/// The delivery callback of [`ProducerBuilder::on_delivery`].
type Callback = Arc<dyn Fn(Delivery) + Send + Sync>;

/// Sends records to Kafka.
///
/// Cheap to clone (clones share one producer); usable from many tasks at once. Built from a
/// [`ClientConfig`] with the Java client's property names (`linger.ms`, `batch.size`,
/// `compression.type`, `delivery.timeout.ms`, `partitioner`, ...; see docs/configuration.md).
///
/// Three ways to send, all with backpressure (they wait while `buffer.memory` or
/// `queue.buffering.max.messages` is full, up to `max.block.ms`):
/// - [`send`](Producer::send): one record, returns where it was written;
/// - [`enqueue`](Producer::enqueue): returns once the record is accepted, with a
///   [`DeliveryFuture`] for its result, so many records can be in flight from one task;
///   [`send_batch`](Producer::send_batch) does this for a list;
/// - [`produce`](Producer::produce): fire and forget; the result goes to the
///   [`on_delivery`](ProducerBuilder::on_delivery) callback (without one, failures are logged
///   and counted in [`ProducerStats::errors`]). Nothing fails silently.
///
/// Errors that cannot succeed later come back at once with topic and partition: a record larger
/// than `max.request.size` (`MESSAGE_TOO_LARGE`, before anything is sent; other records are
/// unaffected), an unknown topic (`UNKNOWN_TOPIC_OR_PARTITION`; gregor never auto-creates
/// topics), an authorization failure. Retriable errors are retried with exponential backoff
/// (`retry.backoff.ms` doubling up to `retry.backoff.max.ms`) until `delivery.timeout.ms`.
///
/// [`flush`](Producer::flush) waits until nothing is outstanding; [`close`](Producer::close)
/// refuses new records, delivers everything accepted and stops the background tasks. Dropping
/// the last handle without `close` also delivers what was accepted, in the background.
///
/// What rskafka cannot do, said plainly:
/// - acks are always `-1` (all in-sync replicas); `acks=0`/`1` is accepted with a warning
///   ([`ClientConfig::warnings`]), never silently;
/// - no idempotence or transactions (refused in the config): delivery is at-least-once, and a
///   batch retried after a lost response may be written twice; per-partition order holds with
///   the default `max.in.flight.requests.per.connection=1`, while with more requests in flight
///   a retried batch (rskafka also retries inside a request) can land after a later one;
/// - headers travel as a map: of several headers with one key only the last value is sent,
///   headers arrive sorted by key rather than in the order given, and a null header value
///   arrives as an empty one ([`ProducerStats::headers_merged`] counts dropped headers);
/// - the broker-side produce timeout is fixed at 30 s.
///
/// ```no_run
/// # async fn example() -> gregor_client::Result<()> {
/// use gregor_client::{ClientConfig, Producer, ProducerRecord};
///
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("linger.ms", "5")?
///     .set("compression.type", "lz4")?;
/// let producer = Producer::connect(&config).await?;
/// let meta = producer
///     .send(ProducerRecord::new("orders", "{\"order_id\":\"o-1\"}").key("user-7"))
///     .await?;
/// println!("written to {}/{} at offset {}", meta.topic, meta.partition, meta.offset);
/// producer.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

/// The last handle going away starts a graceful shutdown.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.begin_shutdown_when_idle();
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.handle.shared;
        f.debug_struct("Producer")
            .field("bootstrap", &s.bootstrap)
            .field("partitioner", &s.strategy.name())
            .field("outstanding", &s.outstanding.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds a [`Producer`] with a partitioner of your own or a delivery callback.
///
/// ```no_run
/// # async fn example() -> gregor_client::Result<()> {
/// use gregor_client::{ClientConfig, Producer, ProducerRecord};
/// use gregor_partition::Strategy;
///
/// let config = ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092")?;
/// let (failed_tx, mut failed) = tokio::sync::mpsc::unbounded_channel();
/// let producer = Producer::builder(&config)
///     .partitioner(Strategy::named("consistent_random").expect("a known name"))
///     .on_delivery(move |d| {
///         if d.result.is_err() {
///             let _ = failed_tx.send(d); // a stream of failed deliveries
///         }
///     })
///     .build()
///     .await?;
/// producer.produce(ProducerRecord::new("orders", "x").key("user-1")).await?;
/// producer.flush().await;
/// assert!(failed.try_recv().is_err(), "nothing failed");
/// # Ok(())
/// # }
/// ```
#[must_use = "call build() to connect"]
pub struct ProducerBuilder {
    config: ClientConfig,
    strategy: Option<Strategy>,
    callback: Option<Callback>,
}

impl fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("strategy", &self.strategy)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

impl ProducerBuilder {
    /// Partitions with `strategy` instead of the `partitioner` property.
    pub fn partitioner(mut self, strategy: Strategy) -> ProducerBuilder {
        self.strategy = Some(strategy);
        self
    }

    /// Calls `callback` with the outcome of every record sent with [`Producer::produce`].
    /// It runs on the producer's tasks: keep it short and never block in it (hand the
    /// [`Delivery`] to a channel for real work).
    pub fn on_delivery(
        mut self,
        callback: impl Fn(Delivery) + Send + Sync + 'static,
    ) -> ProducerBuilder {
        self.callback = Some(Arc::new(callback));
        self
    }

    /// Checks the configuration, connects, and starts the producer. An unreachable cluster is
    /// an error naming every bootstrap server tried, within about
    /// `socket.connection.setup.timeout.ms` per server.
    pub async fn build(self) -> Result<Producer> {
        let config = self.config;
        config.validate()?;
        for warning in config.warnings() {
            tracing::warn!(%warning, "producer configuration");
        }
        let settings = Settings::from_config(&config)?;
        let strategy = match self.strategy {
            Some(s) => s,
            None => Strategy::named(&settings.partitioner)
                .map_err(|e| Error::config("partitioner", e.to_string()))?,
        };
        let brokers = Brokers::new(&config)?;
        let bootstrap = config.bootstrap_servers()?;
        // Our own connection answers first: its error names every server tried.
        brokers.metadata(Some(&[])).await?;
        let backoff = BackoffConfig {
            init_backoff: settings.backoff.max(Duration::from_millis(1)),
            max_backoff: settings.backoff_max.max(settings.backoff),
            base: 2.0,
            // rskafka retries forever by default: never without a deadline.
            deadline: Some(settings.delivery_timeout),
        };
        // rskafka gets the TLS configuration and SASL credentials our own connections use.
        let mut build = rskafka::client::ClientBuilder::new(bootstrap.clone())
            .client_id(Arc::from(config.client_id()))
            .backoff_config(backoff);
        if let Some(tls) = brokers.security().tls() {
            build = build.tls_config(tls);
        }
        if let Some(sasl) = brokers.security().rskafka_sasl() {
            build = build.sasl_config(sasl);
        }
        let build = build.build();
        let client = tokio::time::timeout(settings.max_block, build)
            .await
            .map_err(|_| Error::Connection {
                broker: bootstrap.join(","),
                message: format!(
                    "rskafka found no broker within max.block.ms = {:?}",
                    settings.max_block
                ),
            })?
            .map_err(|e| Error::Connection {
                broker: bootstrap.join(","),
                message: format!("rskafka: {e}"),
            })?;
        let shared = Arc::new(Shared {
            bytes: Semaphore::new(settings.buffer_bytes.min(Semaphore::MAX_PERMITS)),
            records: Semaphore::new(settings.buffer_records.min(Semaphore::MAX_PERMITS)),
            settings,
            strategy,
            callback: self.callback,
            client: Arc::new(client),
            brokers,
            bootstrap: bootstrap.join(","),
            topics: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
            outstanding: AtomicU64::new(0),
            idle: Notify::new(),
            closed: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            shutdown_signal: Notify::new(),
            flushing: AtomicUsize::new(0),
            counters: Counters::default(),
            tasks: Mutex::default(),
        });
        let refresher = tokio::spawn(topics::refresh_loop(Arc::clone(&shared)));
        shared.lock_tasks().push(refresher);
        Ok(Producer {
            handle: Arc::new(Handle { shared }),
        })
    }
}

/// State shared by the handles, the partition tasks and the deliveries.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    strategy: Strategy,
    callback: Option<Callback>,
    pub(crate) client: Arc<rskafka::client::Client>,
    brokers: Brokers,
    bootstrap: String,
    topics: RwLock<HashMap<Arc<str>, Arc<TopicState>>>,
    /// Serializes metadata loads of topics not yet known.
    loading: tokio::sync::Mutex<()>,
    /// `buffer.memory`: permits are bytes of estimated record size.
    bytes: Semaphore,
    /// `queue.buffering.max.messages`.
    records: Semaphore,
    /// Records between the start of a send and their final result.
    outstanding: AtomicU64,
    /// Notified when `outstanding` drops to 0.
    idle: Notify,
    /// No new records.
    closed: AtomicBool,
    /// Partition tasks exit once their accumulators are empty.
    pub(crate) shutdown: AtomicBool,
    shutdown_signal: Notify,
    /// Flushes in progress: batches go out without waiting for linger.ms.
    pub(crate) flushing: AtomicUsize,
    pub(crate) counters: Counters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<TopicState>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_all_partitions(&self) {
        for topic in self.topics_read().values() {
            for p in &topic.partitions {
                p.wake.notify_one();
            }
        }
    }

    /// Once nothing is outstanding, tells every task to finish.
    fn begin_shutdown_when_idle(self: &Arc<Self>) {
        let shared = Arc::clone(self);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime left (the program is ending): tasks die with it.
            return;
        };
        rt.spawn(async move {
            shared.flushing.fetch_add(1, Ordering::SeqCst);
            shared.wait_idle().await;
            shared.stop_tasks();
        });
    }

    fn stop_tasks(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.shutdown_signal.notify_waiters();
        self.wake_all_partitions();
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding.load(Ordering::SeqCst) == 0 {
                return;
            }
            self.wake_all_partitions();
            notified.await;
        }
    }

    /// Ends `n` outstanding records.
    pub(crate) fn finished(&self, n: u64) {
        if self.outstanding.fetch_sub(n, Ordering::SeqCst) == n {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn release(&self, bytes: usize, records: usize) {
        self.bytes.add_permits(bytes);
        self.records.add_permits(records);
    }

    pub(crate) fn callback(&self) -> Option<&Callback> {
        self.callback.as_ref()
    }
}

/// Estimated encoded size of a record: an upper bound of its v2 encoding (varints at their
/// widest). Used for `max.request.size`, `batch.size` and `buffer.memory`.
fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    const VARINT: usize = 5;
    // length, attributes, timestamp delta (varlong), offset delta
    let mut size = VARINT + 1 + 10 + VARINT;
    size += VARINT + key.map_or(0, <[u8]>::len);
    size += VARINT + value.map_or(0, <[u8]>::len);
    size += VARINT;
    for h in headers {
        size += VARINT + h.key.len() + VARINT + h.value.as_ref().map_or(0, |v| v.len());
    }
    size
}

/// Bytes of key, value and headers, for statistics.
fn payload_bytes(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> u64 {
    let h: usize = headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    (key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + h) as u64
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Header lookup for the partitioner, without copying.
struct HeaderView<'a>(&'a [Header]);

impl gregor_partition::Headers for HeaderView<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == name)
            .map(|h| h.value.as_deref().unwrap_or(&[]))
    }
}

/// Buffer space and the outstanding count taken by a record on its way in; given back if it
/// never reaches an accumulator.
struct Admission<'a> {
    shared: &'a Shared,
    bytes: usize,
    records: usize,
    counted: bool,
}

impl Admission<'_> {
    /// The record is in an accumulator: its delivery gives everything back.
    fn disarm(mut self) {
        self.bytes = 0;
        self.records = 0;
        self.counted = false;
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.shared.release(self.bytes, self.records);
        if self.counted {
            self.shared.finished(1);
        }
    }
}

impl Producer {
    /// Connects with the `partitioner` from `config` and no delivery callback.
    pub async fn connect(config: &ClientConfig) -> Result<Producer> {
        Producer::builder(config).build().await
    }

    /// A builder, for a partitioner of your own or a delivery callback.
    pub fn builder(config: &ClientConfig) -> ProducerBuilder {
        ProducerBuilder {
            config: config.clone(),
            strategy: None,
            callback: None,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Sends one record and waits for the broker's acknowledgement (all in-sync replicas).
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Accepts a record for sending and returns without waiting for the broker: the
    /// [`DeliveryFuture`] resolves with its result. Waits (up to `max.block.ms`) only while
    /// the buffer is full. Errors known before sending (closed producer, record too large,
    /// unknown topic or partition) come back here.
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (tx, rx) = oneshot::channel();
        self.accept(record, Done::Wait(tx)).await?;
        Ok(DeliveryFuture { rx })
    }

    /// Sends records and waits for all of them; one result per record, in order. A record
    /// that fails (too large, say) does not affect the others.
    pub async fn send_batch(&self, records: Vec<ProducerRecord>) -> Vec<Result<RecordMetadata>> {
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            pending.push(self.enqueue(record).await);
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(delivery) => delivery.await,
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Fire and forget: returns once the record is accepted; its outcome goes to the
    /// [`on_delivery`](ProducerBuilder::on_delivery) callback (or, without one, a failure is
    /// logged and counted in [`ProducerStats::errors`]). Errors known before sending come
    /// back here instead, and then the callback is not called.
    pub async fn produce(&self, record: ProducerRecord) -> Result<()> {
        self.accept(record, Done::Report).await
    }

    async fn accept(&self, record: ProducerRecord, done: Done) -> Result<()> {
        let shared = self.shared();
        let s = &shared.settings;
        // Counted before the closed check, so close() waits for a send that got past it.
        shared.outstanding.fetch_add(1, Ordering::SeqCst);
        let mut admission = Admission {
            shared,
            bytes: 0,
            records: 0,
            counted: true,
        };
        if shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let ProducerRecord {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = record;
        let size = record_size(key.as_deref(), value.as_deref(), &headers);
        if size + BATCH_OVERHEAD + topic.len() > s.max_request {
            return Err(Error::kafka(
                KafkaCode::MESSAGE_TOO_LARGE,
                partition.map_or_else(
                    || Context::topic(&*topic),
                    |p| Context::partition(&*topic, p),
                ),
                Some(format!(
                    "the record is {size} bytes encoded, more than max.request.size = {} allows; it was not sent",
                    s.max_request
                )),
            ));
        }
        let timestamp = match timestamp {
            None => now_millis(),
            Some(t) if t >= 0 && rskafka::chrono::DateTime::from_timestamp_millis(t).is_some() => t,
            Some(t) => {
                return Err(Error::kafka(
                    KafkaCode(32),
                    Context::topic(&*topic),
                    Some(format!(
                        "timestamp {t} is not a time in milliseconds since 1970"
                    )),
                ));
            }
        };
        if headers.len() > 1 {
            let distinct: HashSet<&str> = headers.iter().map(|h| h.key.as_str()).collect();
            let merged = (headers.len() - distinct.len()) as u64;
            if merged > 0 {
                shared
                    .counters
                    .headers_merged
                    .fetch_add(merged, Ordering::Relaxed);
            }
        }

        // Backpressure: buffer space for the record, waiting up to max.block.ms.
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        acquire(&shared.bytes, permits, s.max_block, "buffer.memory", &topic).await?;
        admission.bytes = size;
        acquire(
            &shared.records,
            1,
            s.max_block,
            "queue.buffering.max.messages",
            &topic,
        )
        .await?;
        admission.records = 1;

        let state = shared.topic(&topic).await?;
        let chosen = match partition {
            Some(p) => shared.check_partition(state, p).await?,
            None => {
                let header_view = HeaderView(&headers);
                let view = RecordView::new(key.as_deref()).with_headers(&header_view);
                let p = gregor_partition::choose(&*state.partitioner, &view, state.count())
                    .map_err(|e| Error::config("partitioner", format!("topic {topic}: {e}")))?;
                (state, p)
            }
        };
        let (state, p) = chosen;
        let Some(part) = state.partition(p) else {
            return Err(Error::kafka(
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                Context::partition(&*topic, p),
                Some(format!("the topic has {} partitions", state.count())),
            ));
        };
        let payload = payload_bytes(key.as_deref(), value.as_deref(), &headers);
        part.append(
            Pending {
                key,
                value,
                headers,
                timestamp,
                size,
                payload,
                enqueued: Instant::now(),
                done,
            },
            s,
        );
        admission.disarm();
        Ok(())
    }

    /// Sends everything accepted so far without waiting for `linger.ms`, and waits until no
    /// record is outstanding (delivered or failed), including records other tasks send while
    /// it waits, as librdkafka's flush does. Each record's wait is bounded by
    /// `delivery.timeout.ms`.
    pub async fn flush(&self) {
        let shared = self.shared();
        shared.flushing.fetch_add(1, Ordering::SeqCst);
        shared.wake_all_partitions();
        shared.wait_idle().await;
        shared.flushing.fetch_sub(1, Ordering::SeqCst);
    }

    /// Refuses new records ([`Error::Closed`]), delivers every record accepted before (their
    /// futures and callbacks get their results), and stops the background tasks. Other clones
    /// of this producer are closed too.
    pub async fn close(self) -> Result<()> {
        let shared = Arc::clone(self.shared());
        shared.closed.store(true, Ordering::SeqCst);
        shared.flushing.fetch_add(1, Ordering::SeqCst);
        shared.wait_idle().await;
        shared.stop_tasks();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *shared.lock_tasks());
        for task in tasks {
            if let Err(e) = task.await
                && e.is_panic()
            {
                return Err(Error::Client {
                    context: Box::new(Context::default()),
                    message: format!("a producer task panicked: {e}"),
                    retriable: false,
                });
            }
        }
        Ok(())
    }

    /// Partitions of `topic` as the producer knows them (loads its metadata if needed).
    pub async fn partitions(&self, topic: &str) -> Result<i32> {
        Ok(self.shared().topic(topic).await?.count())
    }

    /// Statistics since the producer was connected.
    pub fn stats(&self) -> ProducerStats {
        let shared = self.shared();
        let mut partitions = BTreeMap::new();
        for (name, topic) in shared.topics_read().iter() {
            for p in &topic.partitions {
                partitions.insert((name.to_string(), p.partition), p.counters.snapshot());
            }
        }
        let s = &shared.settings;
        let used_bytes = s
            .buffer_bytes
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(shared.bytes.available_permits());
        shared.counters.snapshot(
            partitions,
            shared.outstanding.load(Ordering::Relaxed),
            used_bytes as u64,
        )
    }
}

/// Takes `n` permits, waiting up to `max_block`.
async fn acquire(
    sem: &Semaphore,
    n: u32,
    max_block: Duration,
    what: &'static str,
    topic: &str,
) -> Result<()> {
    let permit = match sem.try_acquire_many(n) {
        Ok(p) => p,
        Err(tokio::sync::TryAcquireError::Closed) => return Err(Error::Closed),
        Err(tokio::sync::TryAcquireError::NoPermits) => {
            match tokio::time::timeout(max_block, sem.acquire_many(n)).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!(
                            "waiting for space in the producer's buffer ({what} is full)"
                        ),
                        context: Box::new(Context::topic(topic)),
                        after: max_block,
                    });
                }
            }
        }
    };
    permit.forget();
    Ok(())
}

/// A copy of `e` for each record of a failed batch.
pub(crate) fn replicate(e: &Error) -> Error {
    match e {
        Error::Config { key, message } => Error::Config {
            key: key.clone(),
            message: message.clone(),
        },
        Error::Kafka {
            code,
            context,
            message,
        } => Error::Kafka {
            code: *code,
            context: context.clone(),
            message: message.clone(),
        },
        Error::Connection { broker, message } => Error::Connection {
            broker: broker.clone(),
            message: message.clone(),
        },
        Error::Timeout {
            what,
            context,
            after,
        } => Error::Timeout {
            what: what.clone(),
            context: context.clone(),
            after: *after,
        },
        Error::Closed => Error::Closed,
        Error::Client {
            context,
            message,
            retriable,
        } => Error::Client {
            context: context.clone(),
            message: message.clone(),
            retriable: *retriable,
        },
        other => Error::Client {
            context: Box::new(Context::default()),
            message: other.to_string(),
            retriable: other.is_retriable(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_size_bounds_the_encoding() {
        let headers = vec![Header::new("a", Some(bytes::Bytes::from_static(b"xyz")))];
        let size = record_size(Some(b"key"), Some(&[0; 100]), &headers);
        // 21 fixed + 5 + 3 + 5 + 100 + 5 + (5 + 1 + 5 + 3)
        assert_eq!(size, 21 + 8 + 105 + 5 + 14);
        assert_eq!(payload_bytes(Some(b"key"), Some(&[0; 100]), &headers), 107);
        assert_eq!(record_size(None, None, &[]), 36);
    }

    #[test]
    fn errors_replicate_with_their_context() {
        let e = Error::kafka(
            KafkaCode::NOT_ENOUGH_REPLICAS,
            Context::partition("t", 2),
            Some("x".into()),
        );
        let copy = replicate(&e);
        assert_eq!(copy.to_string(), e.to_string());
        assert!(copy.is_retriable());
        let e = Error::NoOffset {
            topic: "t".into(),
            partition: 1,
            reason: "r".into(),
        };
        assert_eq!(replicate(&e).to_string(), e.to_string());
    }

    #[test]
    fn header_view_sees_the_last_header() {
        use gregor_partition::Headers;
        let h = vec![
            Header::new("priority", Some(bytes::Bytes::from_static(b"low"))),
            Header::new("priority", Some(bytes::Bytes::from_static(b"high"))),
            Header::new("null", None),
        ];
        let v = HeaderView(&h);
        assert_eq!(v.header("priority"), Some(&b"high"[..]));
        assert_eq!(v.header("null"), Some(&b""[..]));
        assert_eq!(v.header("none"), None);
    }
}
