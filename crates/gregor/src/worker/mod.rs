//! The Worker: consume, decode, handle, commit, with graceful shutdown.
//!
//! ```text
//!            ┌──────────────────────── worker loop (owns the Consumer) ───────────────────────┐
//! Kafka ─poll─▶ group by partition ─▶ partition task (one per partition, in parallel)        │
//!            │                         decode (CodecRegistry) ─▶ handler stack ─▶ outcome     │
//!            │                         watermark = contiguous done prefix ───────────────┐    │
//!            │  every commit_interval: commit watermarks that moved ◀────────────────────┘    │
//!            │  in flight ≥ max_in_flight: pause the partition; ≤ half: resume (backpressure) │
//!            │  circuit breaker open: pause everything until the probe is due                 │
//!            └───────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! At-least-once: an offset is committed only when every record before it is done (handled,
//! filtered, skipped, dead-lettered or a duplicate). A record whose stack fails (a failed
//! dead-letter publish, a deferral) is delivered again, in place, until it is done; its
//! partition waits behind it, and the worker pauses that partition's fetching.

mod batch;
mod partition;
mod stats;

pub use batch::{Batch, BatchError, BoxBatchHandler, batch_handler_fn};
pub use stats::WorkerStats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gregor_client::{ClientConfig, Commits, Consumer, RebalanceListener, Record, TopicPartition};
use gregor_codec::CodecRegistry;
use gregor_event::Event;
use gregor_handler::circuit_breaker::Breaker;
use gregor_handler::metrics::Metrics;
use gregor_handler::{BoxHandler, Error as HandlerError};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use partition::{Mode, Shared, Task};
use stats::Counters;

/// Stops a running worker from anywhere (a signal handler, a test, an admin endpoint).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// Asks the worker to stop: it stops fetching, finishes in-flight work, commits and leaves
    /// the group.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Waits until a stop is asked for.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }

    /// Triggers on the first SIGINT (Ctrl-C) or SIGTERM. Call from inside a tokio runtime.
    pub fn on_signals(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(
                "signal received: stopping (finishing in-flight records, then committing)"
            );
            me.trigger();
        });
    }
}

/// Waits for SIGINT or SIGTERM (Ctrl-C only where there is no SIGTERM).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct Entry {
    tx: mpsc::UnboundedSender<Vec<Record>>,
    shared: Arc<Shared>,
    join: Option<JoinHandle<()>>,
    committed: i64,
    paused_full: bool,
    paused_breaker: bool,
}

type Key = (String, i32);

#[derive(Default)]
struct Partitions {
    live: HashMap<Key, Entry>,
    /// Tasks of revoked partitions still finishing their in-flight record.
    leaving: Vec<JoinHandle<()>>,
}

fn lock(p: &Mutex<Partitions>) -> MutexGuard<'_, Partitions> {
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Listener {
    partitions: Arc<Mutex<Partitions>>,
    /// Lag series of partitions that leave are removed, not left at their last value.
    metrics: Option<(Metrics, String)>,
}

impl Listener {
    fn drop_partitions(&self, list: &[TopicPartition], mut commits: Option<&mut Commits<'_>>) {
        let mut p = lock(&self.partitions);
        for tp in list {
            if let Some((m, group)) = &self.metrics {
                m.remove_lag(&tp.topic, tp.partition, group);
            }
            let Some(entry) = p.live.remove(&(tp.topic.clone(), tp.partition)) else {
                continue;
            };
            entry.shared.request_stop();
            let w = entry.shared.watermark.load(Ordering::Acquire);
            if let Some(c) = commits.as_deref_mut()
                && w > entry.committed
            {
                c.commit(tp.clone(), w);
            }
            drop(entry.tx);
            p.leaving.extend(entry.join);
        }
        p.leaving.retain(|j| !j.is_finished());
    }
}

impl RebalanceListener for Listener {
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        tracing::info!(partitions = ?partitions.iter().map(ToString::to_string).collect::<Vec<_>>(), "assigned");
    }

    fn on_revoked(&mut self, partitions: &[TopicPartition], commits: &mut Commits<'_>) {
        tracing::info!(partitions = ?partitions.iter().map(ToString::to_string).collect::<Vec<_>>(), "revoked: committing what is done");
        self.drop_partitions(partitions, Some(commits));
    }

    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        tracing::warn!(partitions = ?partitions.iter().map(ToString::to_string).collect::<Vec<_>>(), "lost: their uncommitted records will be read again by the new owner");
        self.drop_partitions(partitions, None);
    }
}

/// Builds a [`Worker`]; every setting has a default except the handler.
#[must_use]
pub struct WorkerBuilder {
    config: ClientConfig,
    topics: Vec<String>,
    codecs: Option<Arc<CodecRegistry<Event>>>,
    mode: Option<Mode>,
    lanes: usize,
    max_in_flight: u64,
    commit_interval: Duration,
    shutdown_timeout: Duration,
    breaker: Option<Breaker>,
    metrics: Option<Metrics>,
    consumer_metrics: Option<crate::ConsumerMetrics>,
    redelivery: (Duration, Duration),
    poll_timeout: Duration,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("topics", &self.topics)
            .field("lanes", &self.lanes)
            .field("max_in_flight", &self.max_in_flight)
            .field("commit_interval", &self.commit_interval)
            .finish_non_exhaustive()
    }
}

impl WorkerBuilder {
    /// Topics to subscribe to (required).
    pub fn topics<I, T>(mut self, topics: I) -> WorkerBuilder
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Decoders per topic; messages then carry the decoded [`Event`] (or, for bytes that do
    /// not decode, a poison marker the dead-letter layer publishes). Without codecs handlers
    /// see raw records.
    pub fn codecs(mut self, codecs: Arc<CodecRegistry<Event>>) -> WorkerBuilder {
        self.codecs = Some(codecs);
        self
    }

    /// The handler stack, one record at a time (e.g. built with `gregor_handler::Stack`).
    pub fn handler(mut self, handler: BoxHandler) -> WorkerBuilder {
        self.mode = Some(Mode::Single(handler));
        self
    }

    /// A batch handler: up to `max` records of one partition at a time. A record at which a
    /// batch fails goes to `fallback` (e.g. a retry + dead-letter stack) when given, else the
    /// batch is delivered again from it.
    pub fn batch_handler(
        mut self,
        handler: BoxBatchHandler,
        max: usize,
        fallback: Option<BoxHandler>,
    ) -> WorkerBuilder {
        self.mode = Some(Mode::Batch {
            handler,
            max: max.max(1),
            fallback,
        });
        self
    }

    /// Records of one partition handled at once, in `n` lanes by key hash: records with the
    /// same key stay in order, the committed offset is the contiguous completed watermark
    /// (default 1: strictly in offset order).
    pub fn key_concurrency(mut self, n: usize) -> WorkerBuilder {
        self.lanes = n.max(1);
        self
    }

    /// Records of one partition fetched but not done before its fetching pauses; it resumes
    /// at half (default 10,000). Pausing drops what the consumer had fetched ahead for the
    /// partition, so keep this well above `max.poll.records`.
    pub fn max_in_flight(mut self, n: u64) -> WorkerBuilder {
        self.max_in_flight = n.max(1);
        self
    }

    /// How often moved watermarks are committed (default 500 ms). Also committed on revoke
    /// and shutdown.
    pub fn commit_interval(mut self, every: Duration) -> WorkerBuilder {
        self.commit_interval = every;
        self
    }

    /// How long shutdown waits for in-flight records (default 30 s); what is not done by then
    /// is not committed and is read again by the next owner.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> WorkerBuilder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Pause consumption while this breaker is open.
    pub fn circuit_breaker(mut self, breaker: Breaker) -> WorkerBuilder {
        self.breaker = Some(breaker);
        self
    }

    /// Report `kafka_consumer_lag` here.
    pub fn metrics(mut self, metrics: Metrics) -> WorkerBuilder {
        self.metrics = Some(metrics);
        self
    }

    /// Report the consumer's own statistics (`gregor_consumer_*`: records, bytes, fetches,
    /// rebalances, lost memberships, commits and their latency, lag) here, every second and at
    /// shutdown. Register it with [`ConsumerMetrics::register`](crate::ConsumerMetrics::register).
    pub fn consumer_metrics(mut self, metrics: crate::ConsumerMetrics) -> WorkerBuilder {
        self.consumer_metrics = Some(metrics);
        self
    }

    /// Backoff before delivering a record again after the stack failed (default 500 ms,
    /// doubling to 30 s).
    pub fn redelivery_backoff(mut self, initial: Duration, max: Duration) -> WorkerBuilder {
        self.redelivery = (initial, max.max(initial));
        self
    }

    /// Connects the consumer and subscribes. `enable.auto.commit` is forced off: the worker
    /// commits.
    pub async fn build(self) -> Result<Worker> {
        let mode = self.mode.ok_or_else(|| {
            Error::config(
                "handler",
                "a worker needs a handler (WorkerBuilder::handler or batch_handler)",
            )
        })?;
        if self.topics.is_empty() {
            return Err(Error::config("topics", "a worker needs at least one topic"));
        }
        let group = self
            .config
            .get("group.id")
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                Error::config(
                    "group.id",
                    "a worker consumes as a group member: set group.id",
                )
            })?
            .to_owned();
        if let Some(codecs) = &self.codecs {
            for t in &self.topics {
                codecs.codec_for(t)?;
            }
        }
        let config = self.config.set("enable.auto.commit", "false")?;
        let mut consumer = Consumer::connect(&config).await?;
        let partitions = Arc::new(Mutex::new(Partitions::default()));
        consumer.set_listener(Listener {
            partitions: Arc::clone(&partitions),
            metrics: self.metrics.clone().map(|m| (m, group.clone())),
        });
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(Worker {
            consumer,
            group: Arc::from(group.as_str()),
            topics: self.topics,
            codecs: self.codecs,
            mode,
            lanes: self.lanes,
            max_in_flight: self.max_in_flight,
            commit_interval: self.commit_interval,
            shutdown_timeout: self.shutdown_timeout,
            breaker: self.breaker,
            metrics: self.metrics,
            consumer_metrics: self.consumer_metrics,
            redelivery: self.redelivery,
            poll_timeout: self.poll_timeout,
            partitions,
            counters: Arc::new(Counters::default()),
            shutdown: Shutdown::default(),
        })
    }
}

/// Consumer + codecs + handler stack: decode, handle, commit after success or dead-letter.
///
/// ```no_run
/// # async fn example() -> gregor::Result<()> {
/// use std::sync::Arc;
/// use gregor::client::ClientConfig;
/// use gregor::codec::{CodecRegistry, JsonCodec};
/// use gregor::handler::{handler_fn, Error, Message, Router, Stack};
/// use gregor::Worker;
///
/// async fn created(msg: Message) -> Result<(), Error> {
///     let order: gregor::event::OrderEvent = msg.decode()?;
///     println!("{} ordered {}", order.user_id, order.amount);
///     Ok(())
/// }
///
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("group.id", "order-processor")?;
/// let codecs = Arc::new(CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())));
/// let handler = Stack::new(Router::new().route("order.created", handler_fn(created))).build();
/// let worker = Worker::builder(config)
///     .topics(["commerce.orders.created"])
///     .codecs(codecs)
///     .handler(handler)
///     .build()
///     .await?;
/// let stats = worker.run_until_signal().await?;
/// println!("{stats}");
/// # Ok(())
/// # }
/// ```
pub struct Worker {
    consumer: Consumer,
    group: Arc<str>,
    topics: Vec<String>,
    codecs: Option<Arc<CodecRegistry<Event>>>,
    mode: Mode,
    lanes: usize,
    max_in_flight: u64,
    commit_interval: Duration,
    shutdown_timeout: Duration,
    breaker: Option<Breaker>,
    metrics: Option<Metrics>,
    consumer_metrics: Option<crate::ConsumerMetrics>,
    redelivery: (Duration, Duration),
    poll_timeout: Duration,
    partitions: Arc<Mutex<Partitions>>,
    counters: Arc<Counters>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder for a worker with this consumer configuration (`group.id` required).
    pub fn builder(config: ClientConfig) -> WorkerBuilder {
        WorkerBuilder {
            config,
            topics: Vec::new(),
            codecs: None,
            mode: None,
            lanes: 1,
            max_in_flight: 10_000,
            commit_interval: Duration::from_millis(500),
            shutdown_timeout: Duration::from_secs(30),
            breaker: None,
            metrics: None,
            consumer_metrics: None,
            redelivery: (Duration::from_millis(500), Duration::from_secs(30)),
            poll_timeout: Duration::from_millis(100),
        }
    }

    /// A handle that stops this worker.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The counters so far (records, outcomes, retries).
    pub fn stats(&self) -> WorkerStats {
        let mut s = WorkerStats::from_counters(&self.counters);
        let c = self.consumer.stats();
        s.bytes = c.bytes;
        s.lag = c.total_lag;
        s.commits = c.commits;
        s.rebalances = c.rebalances;
        s
    }

    /// Runs until SIGINT/SIGTERM, then shuts down gracefully and returns the final stats.
    pub async fn run_until_signal(self) -> Result<WorkerStats> {
        self.shutdown.on_signals();
        self.run().await
    }

    /// Runs until [`Shutdown::trigger`], then shuts down gracefully: stops fetching, finishes
    /// in-flight records (up to the shutdown timeout), commits, leaves the group, and returns
    /// the final stats.
    pub async fn run(mut self) -> Result<WorkerStats> {
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now();
        let mut failure = None;
        while !self.shutdown.is_triggered() {
            match self.consumer.poll(self.poll_timeout).await {
                Ok(records) => self.dispatch(records),
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "poll failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "poll failed; stopping the worker");
                    failure = Some(e);
                    break;
                }
            }
            self.flow_control();
            if last_commit.elapsed() >= self.commit_interval {
                self.commit().await;
                last_commit = Instant::now();
            }
            if last_lag.elapsed() >= Duration::from_secs(1) {
                self.report_lag();
                last_lag = Instant::now();
            }
        }
        self.drain().await;
        self.commit().await;
        self.report_lag();
        let stats = self.stats();
        if let Err(e) = self.consumer.close().await {
            tracing::warn!(error = %e, "leaving the group failed");
        }
        match failure {
            Some(e) => Err(Error::Client(e)),
            None => Ok(stats),
        }
    }

    fn dispatch(&mut self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let mut by_partition: Vec<(Key, Vec<Record>)> = Vec::new();
        for r in records {
            match by_partition.last_mut() {
                Some((k, v)) if *k.0 == *r.topic && k.1 == r.partition => v.push(r),
                _ => {
                    if let Some((_, v)) = by_partition
                        .iter_mut()
                        .find(|(k, _)| *k.0 == *r.topic && k.1 == r.partition)
                    {
                        v.push(r);
                    } else {
                        by_partition.push(((r.topic.to_string(), r.partition), vec![r]));
                    }
                }
            }
        }
        let mut p = lock(&self.partitions);
        for (key, records) in by_partition {
            let entry = p.live.entry(key.clone()).or_insert_with(|| {
                let shared = Arc::new(Shared::new());
                let topic: Arc<str> = Arc::from(key.0.as_str());
                let task = Task {
                    codec: self
                        .codecs
                        .as_ref()
                        .and_then(|c| c.codec_for(&key.0).ok().cloned()),
                    topic,
                    partition: key.1,
                    group: Some(Arc::clone(&self.group)),
                    mode: self.mode.clone(),
                    lanes: self.lanes,
                    shared: Arc::clone(&shared),
                    counters: Arc::clone(&self.counters),
                    redelivery: self.redelivery,
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let join = tokio::spawn(task.run(rx));
                Entry {
                    tx,
                    shared,
                    join: Some(join),
                    committed: -1,
                    paused_full: false,
                    paused_breaker: false,
                }
            });
            let n = records.len() as u64;
            entry.shared.received.fetch_add(n, Ordering::AcqRel);
            if entry.tx.send(records).is_err() {
                tracing::warn!(topic = %key.0, partition = key.1, "partition task gone; records will be read again");
            }
        }
    }

    /// Backpressure and the circuit breaker: pause and resume partitions.
    fn flow_control(&mut self) {
        let blocking = self.breaker.as_ref().is_some_and(Breaker::is_blocking);
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        {
            let mut p = lock(&self.partitions);
            for ((topic, partition), e) in &mut p.live {
                let in_flight = e.shared.in_flight();
                let was_paused = e.paused_full || e.paused_breaker;
                if !e.paused_full && in_flight >= self.max_in_flight {
                    e.paused_full = true;
                } else if e.paused_full && in_flight <= self.max_in_flight / 2 {
                    e.paused_full = false;
                }
                e.paused_breaker = blocking;
                let now_paused = e.paused_full || e.paused_breaker;
                let tp = TopicPartition::new(topic.clone(), *partition);
                if now_paused && !was_paused {
                    pause.push(tp);
                } else if !now_paused && was_paused {
                    resume.push(tp);
                }
            }
        }
        if !pause.is_empty() {
            tracing::debug!(
                partitions = pause.len(),
                breaker_open = blocking,
                "pausing fetch"
            );
            if let Err(e) = self.consumer.pause(&pause) {
                tracing::warn!(error = %e, "pause failed");
            }
        }
        if !resume.is_empty() {
            tracing::debug!(partitions = resume.len(), "resuming fetch");
            if let Err(e) = self.consumer.resume(&resume) {
                tracing::warn!(error = %e, "resume failed");
            }
        }
    }

    /// Commits every watermark that moved since the last commit.
    async fn commit(&mut self) {
        let moved: Vec<(String, i32, i64)> = {
            let p = lock(&self.partitions);
            p.live
                .iter()
                .filter_map(|((t, part), e)| {
                    let w = e.shared.watermark.load(Ordering::Acquire);
                    (w > e.committed).then(|| (t.clone(), *part, w))
                })
                .collect()
        };
        if moved.is_empty() {
            return;
        }
        let offsets: Vec<(&str, i32, i64)> =
            moved.iter().map(|(t, p, o)| (t.as_str(), *p, *o)).collect();
        match self.consumer.commit_offsets(&offsets).await {
            Ok(()) => {
                tracing::debug!(partitions = moved.len(), "committed");
                let mut p = lock(&self.partitions);
                for (t, part, w) in moved {
                    if let Some(e) = p.live.get_mut(&(t, part)) {
                        e.committed = e.committed.max(w);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "commit failed; the next one covers it"),
        }
    }

    fn report_lag(&self) {
        if let Some(c) = &self.consumer_metrics {
            c.observe(&self.consumer.stats());
        }
        let Some(m) = &self.metrics else { return };
        for l in self.consumer.lag() {
            if let Some(lag) = l.lag {
                m.set_lag(&l.topic, l.partition, &self.group, lag);
            }
        }
    }

    /// Stops fetching and lets every partition task finish what it received.
    async fn drain(&mut self) {
        let (mut joins, shared) = {
            let mut p = lock(&self.partitions);
            let mut joins: Vec<JoinHandle<()>> = Vec::new();
            let mut shared = Vec::new();
            for e in p.live.values_mut() {
                // Closing the channel: the task finishes its queue, then ends.
                let (tx, _) = mpsc::unbounded_channel();
                drop(std::mem::replace(&mut e.tx, tx));
                shared.push(Arc::clone(&e.shared));
                joins.extend(e.join.take());
            }
            joins.append(&mut p.leaving);
            (joins, shared)
        };
        let in_flight: u64 = shared.iter().map(|s| s.in_flight()).sum();
        tracing::info!(in_flight, timeout = ?self.shutdown_timeout, "stopping: finishing in-flight records");
        let all = futures::future::join_all(joins.iter_mut());
        if tokio::time::timeout(self.shutdown_timeout, all)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown timeout: records not finished are not committed and will be read again"
            );
            for s in &shared {
                s.request_stop();
            }
            for j in &joins {
                j.abort();
            }
        }
    }
}

impl From<HandlerError> for Error {
    fn from(e: HandlerError) -> Error {
        Error::Handler(e)
    }
}
