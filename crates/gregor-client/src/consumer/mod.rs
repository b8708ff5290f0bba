//! `Consumer`: consumer groups (or explicit assignment), offsets, seek, pause, lag and stats.
//!
//! ```text
//! poll ─▶ group: fatal? lost? rejoin? ─▶ join/sync (assignor) ─▶ on_revoked / on_assigned
//!      ─▶ auto-commit due? ─▶ positions: OffsetFetch, else auto.offset.reset (ListOffsets)
//!      ─▶ buffered chunks ─▶ records (positions advance as records are handed out)
//!      ─▶ nothing buffered: one Fetch task per leader (v12, our connection) ─▶ decoded chunks
//! ```
//!
//! Positions: `position` is the next offset to hand to the application; `fetch_position` the
//! next offset to fetch (ahead of it while a fetched chunk waits in the buffer). A chunk is
//! handed out only if it starts at the partition's position, so a seek, pause or revoke makes
//! everything fetched before it stale without tracking requests.

pub(crate) mod assignor;
mod fetch;
pub(crate) mod group;
pub(crate) mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::admin::{Admin, OffsetSpec};
use crate::config::ClientConfig;
use crate::error::{Context, Error, KafkaCode, Result};
use crate::wire::ConnectOptions;
use crate::wire::pool::Brokers;

pub use records::{Header, MAX_DECOMPRESSED, Record, TimestampType};

use group::{Beat, Coordinator, Group, Settings as GroupSettings};
use records::Corrupt;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    fn key(&self) -> (String, i32) {
        (self.topic.clone(), self.partition)
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

fn tp(key: &(String, i32)) -> TopicPartition {
    TopicPartition::new(key.0.clone(), key.1)
}

/// What the consumer does with record data it cannot decode (a CRC mismatch, a broken length).
/// Either way the error names topic, partition and offset; nothing is skipped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CorruptPolicy {
    /// Return [`Error::CorruptRecord`] and stay at that offset: every poll returns the same
    /// error until the application seeks past it. The default.
    #[default]
    Stop,
    /// Return [`Error::CorruptRecord`] once (for the handler's error path, e.g. a dead-letter
    /// record), then continue after the corrupt batch. Data whose extent cannot be known still
    /// stops.
    Report,
}

/// Offsets to commit from [`RebalanceListener::on_revoked`], before the partitions leave.
#[derive(Debug)]
pub struct Commits<'a> {
    positions: &'a BTreeMap<TopicPartition, i64>,
    pending: Vec<(TopicPartition, i64)>,
}

impl Commits<'_> {
    /// The consumer's position (next offset it would hand out) of a revoked partition.
    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.get(partition).copied()
    }

    /// Commits `offset` (the next offset to read: last processed + 1) for `partition`.
    pub fn commit(&mut self, partition: TopicPartition, offset: i64) {
        self.pending.push((partition, offset));
    }

    /// Commits the consumer's position of every revoked partition (everything handed out).
    pub fn commit_positions(&mut self) {
        for (p, o) in self.positions {
            self.pending.push((p.clone(), *o));
        }
    }
}

/// Callbacks around rebalances. They run inside `poll`, on the application's task.
///
/// ```
/// use gregor_client::{Commits, RebalanceListener, TopicPartition};
///
/// struct Log;
/// impl RebalanceListener for Log {
///     fn on_assigned(&mut self, partitions: &[TopicPartition]) {
///         println!("assigned {partitions:?}");
///     }
///     fn on_revoked(&mut self, partitions: &[TopicPartition], commits: &mut Commits<'_>) {
///         // Processing is synchronous here, so everything handed out is done: commit it.
///         commits.commit_positions();
///         println!("revoked {partitions:?}");
///     }
/// }
/// ```
pub trait RebalanceListener: Send {
    /// Partitions newly assigned (with cooperative rebalancing: only the added ones).
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// Partitions about to leave this member; offsets added to `commits` are committed
    /// (with the current generation) before they go. With cooperative rebalancing only the
    /// partitions that move are revoked.
    fn on_revoked(&mut self, partitions: &[TopicPartition], commits: &mut Commits<'_>) {
        let _ = (partitions, commits);
    }

    /// Partitions lost without a chance to commit (the session expired or the generation was
    /// fenced): another member may already own them.
    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
}

/// Lag of one assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset the consumer hands out.
    pub position: Option<i64>,
    /// High watermark (last stable offset under read_committed) from the last fetch.
    pub end_offset: Option<i64>,
    /// `end_offset - position`.
    pub lag: Option<i64>,
    /// Last offset this consumer committed.
    pub committed: Option<i64>,
}

/// Counters and gauges of a consumer, for dashboards (see gregor-telemetry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records handed to the application.
    pub records: u64,
    /// Bytes of record batches fetched (compressed size, control batches included).
    pub bytes: u64,
    /// Fetch responses received.
    pub fetches: u64,
    /// Completed joins (rebalances this member took part in).
    pub rebalances: u64,
    /// Times the membership was lost (session expired, generation fenced).
    pub lost: u64,
    /// Successful commits.
    pub commits: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// Latency of the last successful commit.
    pub commit_latency_last: Option<Duration>,
    /// Highest commit latency seen.
    pub commit_latency_max: Option<Duration>,
    /// Sum of commit latencies (with `commits`: the mean).
    pub commit_latency_total: Duration,
    /// Sum of `lag` over assigned partitions whose lag is known.
    pub total_lag: i64,
    /// Per-partition lag.
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug)]
struct PState {
    topic: Arc<str>,
    position: Option<i64>,
    fetch_position: Option<i64>,
    /// Position lost to OFFSET_OUT_OF_RANGE: reset by policy without asking for commits.
    out_of_range: Option<i64>,
    inflight: bool,
    buffered: usize,
    /// A corrupt chunk waits in the buffer: fetch no further.
    blocked: bool,
    paused: bool,
    end_offset: Option<i64>,
    committed: Option<i64>,
}

impl PState {
    fn new(topic: &str) -> PState {
        PState {
            topic: Arc::from(topic),
            position: None,
            fetch_position: None,
            out_of_range: None,
            inflight: false,
            buffered: 0,
            blocked: false,
            paused: false,
            end_offset: None,
            committed: None,
        }
    }

    /// Forget everything fetched: the next fetch starts at `position`.
    fn reset_fetch(&mut self) {
        self.fetch_position = self.position;
        self.blocked = false;
    }
}

#[derive(Debug)]
struct Chunk {
    key: (String, i32),
    /// The position the chunk's first record continues from.
    start: i64,
    records: VecDeque<Record>,
    next_offset: Option<i64>,
    corrupt: Option<Corrupt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    None,
    Subscribed(Vec<String>),
    Assigned,
}

/// A Kafka consumer: a member of a consumer group (`subscribe`), or a reader of explicitly
/// assigned partitions (`assign`).
///
/// Records come from [`Consumer::poll`] (a batch), [`Consumer::recv`] (one) or
/// [`Consumer::stream`]. Group membership, heartbeats, rebalances and auto-commit happen in
/// the background and inside those calls; call one at least every `max.poll.interval.ms`.
///
/// ```no_run
/// # async fn example() -> gregor_client::Result<()> {
/// use std::time::Duration;
/// use gregor_client::{ClientConfig, Consumer};
///
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("group.id", "order-processor")?
///     .set("enable.auto.commit", "false")?
///     .set("auto.offset.reset", "earliest")?;
/// let mut consumer = Consumer::connect(&config).await?;
/// consumer.subscribe(&["commerce.orders.created"])?;
/// loop {
///     let batch = consumer.poll(Duration::from_secs(1)).await?;
///     for record in &batch {
///         // handle the record, then:
///         consumer.commit_record(record).await?;
///     }
/// #   break;
/// }
/// consumer.close().await?;
/// # Ok(())
/// # }
/// ```
pub struct Consumer {
    config: ClientConfig,
    brokers: Arc<Brokers>,
    admin: Admin,
    group: Option<Group>,
    mode: Mode,
    parts: BTreeMap<(String, i32), PState>,
    leaders: HashMap<(String, i32), i32>,
    leaders_stale: bool,
    inflight: FuturesUnordered<JoinHandle<fetch::Fetched>>,
    inflight_nodes: BTreeSet<i32>,
    buffered: VecDeque<Chunk>,
    ready: VecDeque<Record>,
    listener: Option<Box<dyn RebalanceListener>>,
    policy: CorruptPolicy,
    fetch: fetch::Settings,
    needs_join: bool,
    next_auto_commit: Instant,
    /// Earliest time of the next heartbeat sent from `poll` to confirm a stale membership.
    next_confirm: Instant,
    backoff_until: Option<Instant>,
    /// Resetting positions (ListOffsets) met a retriable error, e.g. a partition of a topic
    /// created a moment ago whose leader the broker does not know yet: retried from here on.
    positions_retry_at: Option<Instant>,
    /// The partition records were last handed out from (partitions take turns).
    last_served: Option<(String, i32)>,
    /// A partition whose corrupt-data error is handed out at the next poll.
    report_next: Option<(String, i32)>,
    stats: Stats,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("mode", &self.mode)
            .field("group", &self.group.as_ref().map(|g| &g.settings.group))
            .field("assignment", &self.parts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for h in self.inflight.iter() {
            h.abort();
        }
    }
}

impl Consumer {
    /// Checks the configuration and connects to a broker from `bootstrap.servers`.
    /// Configuration warnings are logged once.
    pub async fn connect(config: &ClientConfig) -> Result<Consumer> {
        config.validate()?;
        for w in config.warnings() {
            tracing::warn!("{w}");
        }
        let brokers = Arc::new(Brokers::new(config)?);
        brokers.any().await?;
        let admin = Admin::connect(config).await?;
        // The coordinator's own connection: the same client id, timeouts, TLS and SASL as
        // every other connection of this consumer.
        let opts = ConnectOptions {
            client_id: config.client_id().to_owned(),
            connect_timeout: config.duration_ms("socket.connection.setup.timeout.ms"),
            request_timeout: config.request_timeout(),
            security: brokers.security().clone(),
        };
        let group = config.group_id().map(|g| {
            let settings = GroupSettings {
                group: g.to_owned(),
                instance_id: config.group_instance_id().map(str::to_owned),
                assignors: config.assignors(),
                session_timeout: config.session_timeout(),
                rebalance_timeout: config.max_poll_interval(),
                heartbeat_interval: config.heartbeat_interval(),
                request_timeout: config.request_timeout(),
                backoff: config.duration_ms("retry.backoff.ms"),
                backoff_max: config.duration_ms("retry.backoff.max.ms"),
            };
            let coordinator = Arc::new(Coordinator::new(g.to_owned(), Arc::clone(&brokers), opts));
            Group::new(settings, coordinator)
        });
        let fetch = fetch::Settings {
            min_bytes: config.int32("fetch.min.bytes"),
            max_bytes: config.int32("fetch.max.bytes"),
            max_wait: config.duration_ms("fetch.max.wait.ms"),
            partition_max_bytes: config.int32("max.partition.fetch.bytes"),
            request_timeout: config.request_timeout(),
            decode: records::Options {
                check_crc: config.check_crcs(),
                read_committed: config.read_committed(),
            },
        };
        Ok(Consumer {
            next_auto_commit: Instant::now() + config.auto_commit_interval(),
            next_confirm: Instant::now(),
            config: config.clone(),
            brokers,
            admin,
            group,
            mode: Mode::None,
            parts: BTreeMap::new(),
            leaders: HashMap::new(),
            leaders_stale: true,
            inflight: FuturesUnordered::new(),
            inflight_nodes: BTreeSet::new(),
            buffered: VecDeque::new(),
            ready: VecDeque::new(),
            listener: None,
            policy: CorruptPolicy::default(),
            fetch,
            needs_join: false,
            backoff_until: None,
            positions_retry_at: None,
            last_served: None,
            report_next: None,
            stats: Stats::default(),
        })
    }

    /// Sets the rebalance listener (before `subscribe`).
    pub fn set_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    /// Sets what happens on corrupt record data (default [`CorruptPolicy::Stop`]).
    pub fn set_corrupt_policy(&mut self, policy: CorruptPolicy) {
        self.policy = policy;
    }

    /// Joins `group.id` for `topics`; the join happens at the next poll. Needs `group.id`.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.group.is_none() {
            return Err(Error::config(
                "group.id",
                "is required to subscribe: set it, or assign partitions explicitly",
            ));
        }
        if topics.is_empty() {
            return Err(Error::config(
                "group.id",
                "subscribe needs at least one topic",
            ));
        }
        if self.mode == Mode::Assigned {
            self.unassign_all();
        }
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        topics.sort();
        topics.dedup();
        self.mode = Mode::Subscribed(topics);
        self.needs_join = true;
        Ok(())
    }

    /// Reads exactly these partitions, with no group membership. With `group.id` set,
    /// positions start from the group's committed offsets and commits go to the group
    /// (without a generation); otherwise `auto.offset.reset` decides.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if matches!(self.mode, Mode::Subscribed(_)) {
            return Err(Error::config(
                "group.id",
                "this consumer is subscribed; assign() and subscribe() cannot be mixed",
            ));
        }
        self.unassign_all();
        for p in partitions {
            self.parts.insert(p.key(), PState::new(&p.topic));
        }
        self.mode = Mode::Assigned;
        self.leaders_stale = true;
        Ok(())
    }

    fn unassign_all(&mut self) {
        self.parts.clear();
        self.buffered.clear();
        self.ready.clear();
    }

    /// Partitions currently assigned, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.parts.keys().map(tp).collect()
    }

    /// The member id and generation, once joined.
    pub fn generation(&self) -> Option<(String, i32)> {
        self.group
            .as_ref()
            .filter(|g| g.generation >= 0)
            .map(|g| (g.member_id.clone(), g.generation))
    }

    /// The assignor the group chose at the last join (`range`, `roundrobin`,
    /// `cooperative-sticky`).
    pub fn assignor(&self) -> Option<&str> {
        self.group.as_ref().and_then(|g| g.protocol.as_deref())
    }

    /// Waits up to `timeout` for records and returns at most `max.poll.records` of them
    /// (none if the time ran out). Handles rebalances and auto-commit on the way.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<Record>> {
        self.polled();
        if self.ready.is_empty() || !self.may_hand_out() {
            self.fill(Some(Instant::now() + timeout)).await?;
        }
        if !self.may_hand_out() {
            return Ok(Vec::new());
        }
        let n = self.ready.len().min(self.config.max_poll_records());
        Ok(self.ready.drain(..n).collect())
    }

    /// Waits for the next record.
    pub async fn recv(&mut self) -> Result<Record> {
        self.polled();
        loop {
            if self.may_hand_out()
                && let Some(r) = self.ready.pop_front()
            {
                return Ok(r);
            }
            self.fill(None).await?;
        }
    }

    /// Records as a stream (never ends; errors are items, and the stream goes on after them).
    pub fn stream(&mut self) -> impl Stream<Item = Result<Record>> + Send + '_ {
        futures::stream::unfold(self, |c| async move {
            let r = c.recv().await;
            Some((r, c))
        })
    }

    /// The application asked for records: it is alive (`max.poll.interval.ms`).
    fn polled(&self) {
        if let Some(g) = &self.group {
            g.shared.polled();
        }
    }

    /// Fills `ready` with the next records, or returns at the deadline.
    async fn fill(&mut self, deadline: Option<Instant>) -> Result<()> {
        loop {
            self.polled();
            self.ensure_membership().await?;
            self.maybe_auto_commit().await;
            self.init_positions().await?;
            match self.confirm_membership().await {
                Beat::Confirmed => {
                    if self.take_buffered()? {
                        return Ok(());
                    }
                }
                // Give the partitions up or rejoin first (next turn of the loop).
                Beat::Rebalancing | Beat::Ended => continue,
                // Keep fetching; hand nothing out until the coordinator answers.
                Beat::Unknown => {}
            }
            self.launch_fetches().await;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            // Wake at least every 500 ms to look at the group and the auto-commit timer.
            let slice = now + Duration::from_millis(500);
            let until = deadline.map_or(slice, |d| d.min(slice));
            let notify = self.group.as_ref().map(|g| Arc::clone(&g.shared));
            let wait_notify = async {
                match &notify {
                    Some(s) => s.notify.notified().await,
                    None => futures::future::pending().await,
                }
            };
            if self.inflight.is_empty() {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = wait_notify => {}
                }
                continue;
            }
            tokio::select! {
                done = self.inflight.next() => {
                    if let Some(done) = done {
                        self.handle_fetch(done);
                    }
                }
                () = tokio::time::sleep_until(until.into()) => {}
                () = wait_notify => {}
            }
            // Take whatever else already finished without waiting.
            while let Some(Some(done)) = self.inflight.next().now_or_never() {
                self.handle_fetch(done);
            }
        }
    }

    // ---- group ----

    /// Whether fetched records may be handed out: not while the membership has gone
    /// unconfirmed for `session.timeout.ms` (the coordinator was unreachable, or this process
    /// was stopped), since the broker may have expired this member and given its partitions to
    /// another one; records handed out then would be zombie reads.
    fn may_hand_out(&self) -> bool {
        match &self.group {
            Some(g) if matches!(self.mode, Mode::Subscribed(_)) && g.generation >= 0 => {
                !g.shared.heartbeat_stale(g.settings.session_timeout)
            }
            _ => true,
        }
    }

    /// Confirms a stale membership with one heartbeat (at most one attempt per 500 ms) before
    /// records are handed out. `Confirmed`: records may be handed out. A confirmation that finds
    /// the membership gone or a rebalance under way sets the group's flags, and the next turn
    /// of `fill` gives the partitions up (`on_lost`, buffered records dropped) or rejoins; an
    /// unreachable coordinator keeps the records buffered (fetching goes on) until it answers.
    async fn confirm_membership(&mut self) -> Beat {
        if self.may_hand_out() {
            return Beat::Confirmed;
        }
        let Some(group) = &self.group else {
            return Beat::Confirmed;
        };
        let now = Instant::now();
        if now < self.next_confirm {
            return Beat::Unknown;
        }
        self.next_confirm = now + Duration::from_millis(500);
        tracing::info!(
            group = %group.settings.group,
            generation = group.generation,
            "membership not confirmed for session.timeout.ms: asking the coordinator before handing out records"
        );
        group.confirm().await
    }

    async fn ensure_membership(&mut self) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        if let Some((code, message)) = group.shared.fatal() {
            return Err(Error::kafka(
                code,
                Context::group(group.settings.group.clone()),
                Some(message),
            ));
        }
        let Mode::Subscribed(topics) = self.mode.clone() else {
            return Ok(());
        };
        if let Some(why) = group.shared.take_lost() {
            let lost = self.assignment();
            tracing::warn!(group = %group.settings.group, reason = %why, partitions = lost.len(), "membership lost");
            if let Some(g) = &mut self.group {
                let reset_member = g.shared.reset_member.load(Ordering::Acquire);
                g.reset(reset_member);
            }
            if !lost.is_empty()
                && let Some(l) = &mut self.listener
            {
                l.on_lost(&lost);
            }
            self.unassign_all();
            self.stats.lost += 1;
            self.needs_join = true;
        }
        let rejoin = self
            .group
            .as_ref()
            .is_some_and(|g| g.shared.rejoin.load(Ordering::Acquire));
        if self.needs_join || rejoin {
            self.rebalance(&topics).await?;
        }
        Ok(())
    }

    async fn rebalance(&mut self, topics: &[String]) -> Result<()> {
        let cooperative = self.group.as_ref().is_some_and(Group::cooperative);
        let owned: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        if !cooperative && !owned.is_empty() {
            self.revoke(&owned).await;
        }
        let owned: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        let Some(group) = &mut self.group else {
            return Ok(());
        };
        let assignment = group.join(topics, &owned, &self.brokers).await?;
        self.stats.rebalances += 1;
        self.needs_join = false;
        let assigned: BTreeSet<(String, i32)> = assignment.into_iter().collect();
        let current: BTreeSet<(String, i32)> = self.parts.keys().cloned().collect();
        let revoked: Vec<(String, i32)> = current.difference(&assigned).cloned().collect();
        let added: Vec<(String, i32)> = assigned.difference(&current).cloned().collect();
        if !revoked.is_empty() {
            self.revoke(&revoked).await;
            if cooperative {
                // Hand the revoked partitions over: Java's cooperative protocol rejoins at once.
                self.needs_join = true;
            }
        }
        for key in &added {
            self.parts.insert(key.clone(), PState::new(&key.0));
        }
        self.leaders_stale = true;
        if !added.is_empty()
            && let Some(l) = &mut self.listener
        {
            let list: Vec<TopicPartition> = added.iter().map(tp).collect();
            l.on_assigned(&list);
        }
        Ok(())
    }

    /// Commits what auto-commit covers, lets the listener commit, then drops the partitions.
    async fn revoke(&mut self, keys: &[(String, i32)]) {
        if self.config.auto_commit() {
            let offsets = self.positions_to_commit(Some(keys));
            if let Err(e) = self.commit_raw(&offsets).await {
                tracing::warn!(error = %e, "commit before revoke failed");
            }
        }
        if let Some(l) = &mut self.listener {
            let positions: BTreeMap<TopicPartition, i64> = keys
                .iter()
                .filter_map(|k| {
                    self.parts
                        .get(k)
                        .and_then(|p| p.position)
                        .map(|o| (tp(k), o))
                })
                .collect();
            let list: Vec<TopicPartition> = keys.iter().map(tp).collect();
            let mut commits = Commits {
                positions: &positions,
                pending: Vec::new(),
            };
            l.on_revoked(&list, &mut commits);
            let offsets: Vec<(String, i32, i64)> = commits
                .pending
                .into_iter()
                .map(|(p, o)| (p.topic, p.partition, o))
                .collect();
            if let Err(e) = self.commit_raw(&offsets).await {
                tracing::warn!(error = %e, "the rebalance listener's commit failed");
            }
        }
        for k in keys {
            self.parts.remove(k);
        }
        self.buffered.retain(|c| !keys.contains(&c.key));
        self.ready
            .retain(|r| !keys.iter().any(|k| *k.0 == *r.topic && k.1 == r.partition));
    }

    // ---- offsets ----

    fn positions_to_commit(&self, only: Option<&[(String, i32)]>) -> Vec<(String, i32, i64)> {
        self.parts
            .iter()
            .filter(|(k, _)| only.is_none_or(|o| o.contains(k)))
            .filter_map(|(k, p)| {
                let pos = p.position?;
                (p.committed != Some(pos)).then(|| (k.0.clone(), k.1, pos))
            })
            .collect()
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.config.auto_commit() || Instant::now() < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = Instant::now() + self.config.auto_commit_interval();
        let offsets = self.positions_to_commit(None);
        if let Err(e) = self.commit_raw(&offsets).await {
            tracing::warn!(error = %e, "auto-commit failed");
        }
    }

    async fn commit_raw(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(group) = &self.group else {
            return Err(Error::config(
                "group.id",
                "is required to commit offsets: commits are stored per group",
            ));
        };
        let start = Instant::now();
        match group.commit(offsets).await {
            Ok(()) => {
                let took = start.elapsed();
                self.stats.commits += 1;
                self.stats.commit_latency_last = Some(took);
                self.stats.commit_latency_max =
                    Some(self.stats.commit_latency_max.map_or(took, |m| m.max(took)));
                self.stats.commit_latency_total += took;
                for (t, p, o) in offsets {
                    if let Some(s) = self.parts.get_mut(&(t.clone(), *p)) {
                        s.committed = Some(*o);
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.stats.commit_failures += 1;
                match e.code() {
                    Some(KafkaCode::REBALANCE_IN_PROGRESS | KafkaCode::ILLEGAL_GENERATION) => {
                        group.shared.rejoin.store(true, Ordering::Release);
                    }
                    Some(KafkaCode::UNKNOWN_MEMBER_ID) => {
                        group.shared.reset_member.store(true, Ordering::Release);
                        group.shared.rejoin.store(true, Ordering::Release);
                    }
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// Commits the position of every assigned partition: everything handed out so far.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets = self.positions_to_commit(None);
        self.commit_raw(&offsets).await
    }

    /// Commits explicit offsets: `(topic, partition, next offset to read)`, i.e. the last
    /// processed offset + 1. Fenced by the group generation: a commit from a member that lost
    /// its partitions fails with `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID` or
    /// `REBALANCE_IN_PROGRESS`.
    pub async fn commit_offsets(&mut self, offsets: &[(&str, i32, i64)]) -> Result<()> {
        let offsets: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|(t, p, o)| ((*t).to_owned(), *p, *o))
            .collect();
        self.commit_raw(&offsets).await
    }

    /// Commits `record.offset + 1` for its partition.
    pub async fn commit_record(&mut self, record: &Record) -> Result<()> {
        self.commit_raw(&[(
            record.topic.to_string(),
            record.partition,
            record.next_offset(),
        )])
        .await
    }

    /// The group's committed offsets for `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        let Some(group) = &self.group else {
            return Err(Error::config(
                "group.id",
                "is required to read committed offsets",
            ));
        };
        let keys: Vec<(String, i32)> = partitions.iter().map(TopicPartition::key).collect();
        let found = group.committed(&keys).await?;
        Ok(keys
            .iter()
            .map(|k| (tp(k), found.get(k).copied().flatten()))
            .collect())
    }

    /// Positions for partitions that have none: the committed offset, else `auto.offset.reset`.
    async fn init_positions(&mut self) -> Result<()> {
        let missing: Vec<(String, i32)> = self
            .parts
            .iter()
            .filter(|(_, p)| p.position.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self
            .positions_retry_at
            .is_some_and(|at| Instant::now() < at)
        {
            return Ok(());
        }
        self.positions_retry_at = None;
        let ask_group: Vec<(String, i32)> = missing
            .iter()
            .filter(|k| self.parts.get(*k).is_some_and(|p| p.out_of_range.is_none()))
            .cloned()
            .collect();
        let mut committed: HashMap<(String, i32), Option<i64>> = HashMap::new();
        if let Some(group) = &self.group
            && !ask_group.is_empty()
        {
            committed = group.committed(&ask_group).await?;
        }
        let mut reset: Vec<(String, i32)> = Vec::new();
        for k in &missing {
            match committed.get(k).copied().flatten() {
                Some(o) => {
                    if let Some(p) = self.parts.get_mut(k) {
                        p.position = Some(o);
                        p.committed = Some(o);
                        p.reset_fetch();
                    }
                }
                None => reset.push(k.clone()),
            }
        }
        if reset.is_empty() {
            return Ok(());
        }
        let spec = match self.config.offset_reset() {
            "earliest" => OffsetSpec::Earliest,
            "latest" => OffsetSpec::Latest,
            _ => {
                let k = &reset[0];
                let reason = match self.parts.get(k).and_then(|p| p.out_of_range) {
                    Some(o) => format!(
                        "offset {o} is out of range and auto.offset.reset=none; seek to a valid offset"
                    ),
                    None => "nothing is committed for it and auto.offset.reset=none; \
                             seek, or set auto.offset.reset to earliest or latest"
                        .to_owned(),
                };
                return Err(Error::NoOffset {
                    topic: k.0.clone(),
                    partition: k.1,
                    reason,
                });
            }
        };
        let req: Vec<(&str, i32, OffsetSpec)> =
            reset.iter().map(|(t, p)| (t.as_str(), *p, spec)).collect();
        let listed = match self
            .admin
            .list_offsets(&req, self.config.read_committed())
            .await
        {
            Ok(listed) => listed,
            // Leadership moving or not yet known (a new topic, a broker restarting): the
            // partitions wait without a position, the others go on, and the next turn asks
            // again with fresh metadata.
            Err(e) if e.is_retriable() && !e.is_auth() => {
                tracing::debug!(error = %e, "resetting positions; retrying after retry.backoff.ms");
                self.leaders_stale = true;
                self.positions_retry_at =
                    Some(Instant::now() + self.config.duration_ms("retry.backoff.ms"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for l in listed {
            if let (Some(p), Some(o)) = (
                self.parts.get_mut(&(l.topic.clone(), l.partition)),
                l.offset,
            ) {
                p.position = Some(o);
                p.out_of_range = None;
                p.reset_fetch();
            }
        }
        Ok(())
    }

    // ---- fetching ----

    async fn refresh_leaders(&mut self) {
        let mut topics: Vec<&str> = self.parts.keys().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        if topics.is_empty() {
            return;
        }
        match self.brokers.metadata(Some(&topics)).await {
            Ok(meta) => {
                self.leaders.clear();
                for t in &meta.topics {
                    for p in &t.partitions {
                        if let Some(l) = p.leader {
                            self.leaders.insert((t.name.clone(), p.id), l);
                        }
                    }
                }
                self.leaders_stale = false;
            }
            Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
        }
    }

    async fn launch_fetches(&mut self) {
        if let Some(until) = self.backoff_until {
            if Instant::now() < until {
                return;
            }
            self.backoff_until = None;
        }
        let needs_leaders =
            self.leaders_stale || self.parts.keys().any(|k| !self.leaders.contains_key(k));
        if needs_leaders {
            self.refresh_leaders().await;
        }
        let mut by_node: BTreeMap<i32, Vec<fetch::Spec>> = BTreeMap::new();
        for (k, p) in &self.parts {
            let (Some(offset), Some(&leader)) = (p.fetch_position, self.leaders.get(k)) else {
                continue;
            };
            if p.paused || p.inflight || p.blocked || p.buffered > 1 || p.position.is_none() {
                continue;
            }
            if self.inflight_nodes.contains(&leader) {
                continue;
            }
            by_node.entry(leader).or_default().push(fetch::Spec {
                topic: Arc::clone(&p.topic),
                partition: k.1,
                offset,
            });
        }
        for (node, specs) in by_node {
            let conn = match self.brokers.node(node).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(node, error = %e, "no connection to the leader");
                    self.leaders_stale = true;
                    self.backoff_until =
                        Some(Instant::now() + self.config.duration_ms("retry.backoff.ms"));
                    continue;
                }
            };
            for s in &specs {
                if let Some(p) = self.parts.get_mut(&(s.topic.to_string(), s.partition)) {
                    p.inflight = true;
                }
            }
            self.inflight_nodes.insert(node);
            self.inflight
                .push(tokio::spawn(fetch::run(conn, node, specs, self.fetch)));
        }
    }

    fn handle_fetch(&mut self, done: std::result::Result<fetch::Fetched, tokio::task::JoinError>) {
        let Ok(done) = done else {
            // A panicked or aborted task: its partitions are fetched again.
            for p in self.parts.values_mut() {
                p.inflight = false;
            }
            self.inflight_nodes.clear();
            return;
        };
        self.inflight_nodes.remove(&done.node);
        for s in &done.specs {
            if let Some(p) = self.parts.get_mut(&(s.topic.to_string(), s.partition)) {
                p.inflight = false;
            }
        }
        self.stats.fetches += 1;
        let results = match done.result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node = done.node, error = %e, "fetch failed; refreshing leaders");
                self.leaders_stale = true;
                self.backoff_until =
                    Some(Instant::now() + self.config.duration_ms("retry.backoff.ms"));
                return;
            }
        };
        let read_committed = self.config.read_committed();
        for r in results {
            let key = (r.spec.topic.to_string(), r.spec.partition);
            let Some(p) = self.parts.get_mut(&key) else {
                continue; // revoked meanwhile
            };
            if p.fetch_position != Some(r.spec.offset) {
                continue; // a seek made it stale
            }
            match r.outcome {
                fetch::Outcome::Data {
                    decoded,
                    high_watermark,
                    last_stable,
                } => {
                    p.end_offset = Some(if read_committed && last_stable >= 0 {
                        last_stable
                    } else {
                        high_watermark
                    });
                    self.stats.bytes += decoded.bytes as u64;
                    if decoded.records.is_empty()
                        && decoded.corrupt.is_none()
                        && decoded.next_offset.is_none()
                    {
                        continue;
                    }
                    if decoded.corrupt.is_some() {
                        p.blocked = true;
                    }
                    let next = decoded
                        .next_offset
                        .or_else(|| decoded.records.last().map(Record::next_offset));
                    if let Some(n) = next {
                        p.fetch_position = Some(n);
                    }
                    p.buffered += 1;
                    self.buffered.push_back(Chunk {
                        key,
                        start: r.spec.offset,
                        records: decoded.records.into(),
                        next_offset: next,
                        corrupt: decoded.corrupt,
                    });
                }
                fetch::Outcome::Error(code) => match code {
                    KafkaCode::OFFSET_OUT_OF_RANGE => {
                        tracing::info!(topic = %key.0, partition = key.1, offset = r.spec.offset, "offset out of range; resetting");
                        p.out_of_range = p.position;
                        p.position = None;
                        p.fetch_position = None;
                    }
                    c if c.is_retriable()
                        || matches!(
                            c,
                            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                                | KafkaCode::NOT_LEADER_OR_FOLLOWER
                        ) =>
                    {
                        self.leaders_stale = true;
                        self.backoff_until =
                            Some(Instant::now() + self.config.duration_ms("retry.backoff.ms"));
                    }
                    c => {
                        // Not retriable (authorization, ...): surface it at the partition.
                        self.buffered.push_back(Chunk {
                            key: key.clone(),
                            start: r.spec.offset,
                            records: VecDeque::new(),
                            next_offset: None,
                            corrupt: Some(Corrupt {
                                offset: r.spec.offset,
                                resume_at: None,
                                message: format!("fetch failed with {c}"),
                            }),
                        });
                        p.buffered += 1;
                        p.blocked = true;
                    }
                },
            }
        }
    }

    /// The index of the chunk to hand out from next: the first chunk of each partition is its
    /// only candidate (chunks of one partition are in offset order), and partitions take turns
    /// after `last_served`, so a large backlog of one partition cannot starve the others.
    fn next_chunk(&self) -> Option<usize> {
        let mut heads: Vec<(&(String, i32), usize)> = Vec::new();
        for (i, c) in self.buffered.iter().enumerate() {
            if !heads.iter().any(|(k, _)| **k == c.key) {
                heads.push((&c.key, i));
            }
        }
        heads.sort();
        // A partition whose corrupt data waits behind records already handed out goes first.
        if let Some(first) = self
            .report_next
            .as_ref()
            .and_then(|k| heads.iter().find(|(h, _)| *h == k))
        {
            return Some(first.1);
        }
        let after = self
            .last_served
            .as_ref()
            .and_then(|last| heads.iter().find(|(k, _)| *k > last).map(|(_, i)| *i));
        after.or_else(|| heads.first().map(|(_, i)| *i))
    }

    /// Moves buffered records into `ready`. `Ok(true)` if there is something to return.
    fn take_buffered(&mut self) -> Result<bool> {
        let max = self.config.max_poll_records();
        while self.ready.len() < max {
            let Some(index) = self.next_chunk() else {
                break;
            };
            let chunk = &mut self.buffered[index];
            let valid = self
                .parts
                .get(&chunk.key)
                .is_some_and(|p| !p.paused && p.position == Some(chunk.start));
            if !valid {
                if let Some(c) = self.buffered.remove(index)
                    && let Some(p) = self.parts.get_mut(&c.key)
                {
                    p.buffered = p.buffered.saturating_sub(1);
                }
                continue;
            }
            let room = max - self.ready.len();
            let n = room.min(chunk.records.len());
            if n > 0 {
                let last = chunk.records[n - 1].next_offset();
                self.ready.extend(chunk.records.drain(..n));
                self.stats.records += n as u64;
                chunk.start = last;
                if let Some(p) = self.parts.get_mut(&chunk.key) {
                    p.position = Some(last);
                }
            }
            self.last_served = Some(chunk.key.clone());
            if !chunk.records.is_empty() {
                break; // max.poll.records reached
            }
            if chunk.corrupt.is_some() && !self.ready.is_empty() {
                // Hand out the good records first; the error comes first next poll.
                self.report_next = Some(chunk.key.clone());
                break;
            }
            self.report_next = None;
            let Some(chunk) = self.buffered.remove(index) else {
                break;
            };
            let Some(p) = self.parts.get_mut(&chunk.key) else {
                continue;
            };
            p.buffered = p.buffered.saturating_sub(1);
            if let Some(c) = chunk.corrupt {
                let error = Error::CorruptRecord {
                    topic: chunk.key.0.clone(),
                    partition: chunk.key.1,
                    offset: c.offset,
                    resume_at: c.resume_at,
                    message: c.message,
                };
                match (self.policy, c.resume_at) {
                    (CorruptPolicy::Report, Some(resume)) => {
                        p.position = Some(resume);
                        p.reset_fetch();
                    }
                    _ => {
                        // Stop: stay at the corrupt offset; fetching again finds it again.
                        p.position = Some(c.offset);
                        p.reset_fetch();
                    }
                }
                return Err(error);
            }
            if let Some(n) = chunk.next_offset
                && p.position.is_some_and(|pos| pos < n)
            {
                p.position = Some(n);
            }
        }
        Ok(!self.ready.is_empty())
    }

    // ---- seek, pause ----

    fn part_mut(&mut self, partition: &TopicPartition) -> Result<&mut PState> {
        self.parts.get_mut(&partition.key()).ok_or_else(|| {
            Error::config(
                "group.id",
                format!("{partition} is not assigned to this consumer"),
            )
        })
    }

    fn drop_fetched(&mut self, key: &(String, i32)) {
        self.ready
            .retain(|r| !(*r.topic == *key.0 && r.partition == key.1));
        let before = self.buffered.len();
        self.buffered.retain(|c| c.key != *key);
        let dropped = before - self.buffered.len();
        if let Some(p) = self.parts.get_mut(key) {
            p.buffered = p.buffered.saturating_sub(dropped);
        }
    }

    /// Continues `partition` from `offset` (the next record handed out is at `offset`, or the
    /// first after it).
    pub fn seek(&mut self, partition: &TopicPartition, offset: i64) -> Result<()> {
        let key = partition.key();
        let p = self.part_mut(partition)?;
        p.position = Some(offset);
        p.out_of_range = None;
        p.reset_fetch();
        self.drop_fetched(&key);
        Ok(())
    }

    async fn seek_spec(&mut self, partitions: &[TopicPartition], spec: OffsetSpec) -> Result<()> {
        for p in partitions {
            self.part_mut(p)?;
        }
        let req: Vec<(&str, i32, OffsetSpec)> = partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, spec))
            .collect();
        let read_committed = self.config.read_committed();
        let listed = self.admin.list_offsets(&req, read_committed).await?;
        let mut missing = Vec::new();
        for l in listed {
            let p = TopicPartition::new(l.topic, l.partition);
            match l.offset {
                Some(o) => self.seek(&p, o)?,
                None => missing.push(p),
            }
        }
        if !missing.is_empty() {
            // No record at or after the timestamp: continue at the end, as Java's offsetsForTimes
            // users do.
            let req: Vec<(&str, i32, OffsetSpec)> = missing
                .iter()
                .map(|p| (p.topic.as_str(), p.partition, OffsetSpec::Latest))
                .collect();
            for l in self.admin.list_offsets(&req, read_committed).await? {
                if let Some(o) = l.offset {
                    self.seek(&TopicPartition::new(l.topic, l.partition), o)?;
                }
            }
        }
        Ok(())
    }

    /// Seeks to the log start of each partition.
    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_spec(partitions, OffsetSpec::Earliest).await
    }

    /// Seeks to the end of each partition (the next record produced).
    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_spec(partitions, OffsetSpec::Latest).await
    }

    /// Seeks each partition to its first record with a timestamp at or after `timestamp_ms`
    /// (ListOffsets by time); to the end where there is none.
    pub async fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<()> {
        self.seek_spec(partitions, OffsetSpec::Timestamp(timestamp_ms))
            .await
    }

    /// Stops fetching `partitions` (they stay assigned; group membership is unaffected).
    /// Records already fetched for them are dropped and fetched again after `resume`.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for partition in partitions {
            let key = partition.key();
            let p = self.part_mut(partition)?;
            p.paused = true;
            p.reset_fetch();
            self.drop_fetched(&key);
        }
        Ok(())
    }

    /// Resumes fetching paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for partition in partitions {
            self.part_mut(partition)?.paused = false;
        }
        Ok(())
    }

    /// Paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.parts
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(k, _)| tp(k))
            .collect()
    }

    /// The next offset this consumer hands out for `partition`, once known.
    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.parts.get(&partition.key()).and_then(|p| p.position)
    }

    // ---- lag, stats ----

    /// Lag of every assigned partition (end offset from the last fetch minus position).
    pub fn lag(&self) -> Vec<PartitionLag> {
        self.parts
            .iter()
            .map(|(k, p)| PartitionLag {
                topic: k.0.clone(),
                partition: k.1,
                position: p.position,
                end_offset: p.end_offset,
                lag: match (p.end_offset, p.position) {
                    (Some(e), Some(pos)) => Some((e - pos).max(0)),
                    _ => None,
                },
                committed: p.committed,
            })
            .collect()
    }

    /// Counters, commit latency and lag.
    pub fn stats(&self) -> Stats {
        let partitions = self.lag();
        Stats {
            total_lag: partitions.iter().filter_map(|p| p.lag).sum(),
            partitions,
            ..self.stats.clone()
        }
    }

    /// Commits (with auto-commit on), lets the listener commit the revoked partitions, and
    /// leaves the group (a static member does not leave: its restart within
    /// `session.timeout.ms` causes no rebalance).
    pub async fn close(mut self) -> Result<()> {
        for h in self.inflight.iter() {
            h.abort();
        }
        let keys: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        let mut result = Ok(());
        if matches!(self.mode, Mode::Subscribed(_)) {
            if !keys.is_empty() {
                self.revoke(&keys).await;
            }
            if let Some(g) = &mut self.group {
                result = g.leave("the consumer is closing").await;
            }
        } else if self.config.auto_commit() {
            let offsets = self.positions_to_commit(None);
            result = self.commit_raw(&offsets).await;
        }
        result
    }
}

use futures::FutureExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_collect_what_the_listener_asks_for() {
        let positions = BTreeMap::from([
            (TopicPartition::new("t", 0), 10),
            (TopicPartition::new("t", 1), 20),
        ]);
        let mut c = Commits {
            positions: &positions,
            pending: Vec::new(),
        };
        assert_eq!(c.position(&TopicPartition::new("t", 1)), Some(20));
        c.commit(TopicPartition::new("t", 0), 5);
        c.commit_positions();
        assert_eq!(c.pending.len(), 3);
        assert_eq!(c.pending[0], (TopicPartition::new("t", 0), 5));
    }
}
