//! Classic group membership over gregor's own connection: FindCoordinator, JoinGroup (with
//! the MEMBER_ID_REQUIRED round), SyncGroup, background Heartbeat, LeaveGroup, and the
//! group's offsets (OffsetFetch, OffsetCommit fenced by generation).
//!
//! ```text
//! poll ─▶ join(): FindCoordinator ─▶ JoinGroup ─┬ leader: assign ─▶ SyncGroup(all) ─▶ assignment
//!                                                └ follower:        SyncGroup()    ─┘
//!         heartbeat task (every heartbeat.interval.ms, own connection to the coordinator)
//!           REBALANCE_IN_PROGRESS ─▶ rejoin flag     UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION ─▶ lost
//!           FENCED_INSTANCE_ID ─▶ fatal              no poll for max.poll.interval.ms ─▶ LeaveGroup, lost
//!           coordinator unreachable / moved (even past session.timeout.ms) ─▶ coordinator
//!             unknown: find it again (backoff) and keep member id, generation and partitions
//! ```
//!
//! Only the coordinator decides that a membership is gone: as in Kafka's Java consumer, a
//! member that cannot reach it keeps its partitions and keeps fetching, and gives them up when
//! the (new) coordinator answers UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION. Until a heartbeat has
//! succeeded within the last `session.timeout.ms` the consumer hands out no record (see
//! [`Shared::heartbeat_stale`]): the broker may have expired the member meanwhile.
//!
//! The coordinator gets its own connection (as the Java client does): a broker answers the
//! requests of one connection in order, so a heartbeat must not queue behind a long fetch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
    join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics},
    sync_group_request::SyncGroupRequestAssignment,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::assignor::{self, Member, Subscription, TopicPartition};
use crate::error::{Context, Error, KafkaCode, Result};
use crate::wire::pool::Brokers;
use crate::wire::{ConnectOptions, Connection};

const FIND_COORDINATOR_MAX: i16 = 6;
/// First wait before asking again for a coordinator that is unknown or not available yet.
const FIND_COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);
/// How long a commit waits for a coordinator that is unreachable or moving (its node was
/// killed: the controller fences it and another broker loads the group) before failing.
const COMMIT_PATIENCE: Duration = Duration::from_secs(30);
const JOIN_GROUP_MAX: i16 = 9;
const SYNC_GROUP_MAX: i16 = 5;
const HEARTBEAT_MAX: i16 = 4;
const LEAVE_GROUP_MAX: i16 = 5;
/// OffsetCommit v8 (topic names, generation fencing); v10 switches to topic ids.
const OFFSET_COMMIT_MAX: i16 = 8;
/// OffsetFetch v8 (groups array, topic names).
const OFFSET_FETCH_MAX: i16 = 8;
const PROTOCOL_TYPE: &str = "consumer";
const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);

/// The group coordinator, found by FindCoordinator and reached over a dedicated connection.
pub(crate) struct Coordinator {
    group: String,
    brokers: Arc<Brokers>,
    opts: ConnectOptions,
    conn: Mutex<Option<Arc<Connection>>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    pub(crate) fn new(group: String, brokers: Arc<Brokers>, opts: ConnectOptions) -> Coordinator {
        Coordinator {
            group,
            brokers,
            opts,
            conn: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Connection>>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the coordinator (NOT_COORDINATOR, a dead connection): the next call finds it again.
    pub(crate) fn invalidate(&self) {
        *self.lock() = None;
    }

    /// A live connection to the coordinator, found (FindCoordinator) and opened if needed.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>> {
        if let Some(c) = self.lock().as_ref().filter(|c| !c.is_dead()) {
            return Ok(Arc::clone(c));
        }
        // A coordinator that is not available yet (a cluster that has just started and is
        // creating `__consumer_offsets`) or has moved is an error here; the callers that must
        // outlast it (commit, offset fetch, join, heartbeat) wait and ask again, bounded.
        // v4+ (the versions whose response layouts we check) name the group in the array.
        let request = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(self.group.clone())]);
        let any = self.brokers.any().await?;
        let response = any.send(&request, FIND_COORDINATOR_MAX).await?;
        let (code, message, host, port) = match response.coordinators.first() {
            Some(c) => (
                c.error_code,
                c.error_message.clone(),
                c.host.to_string(),
                c.port,
            ),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.host.to_string(),
                response.port,
            ),
        };
        if let Some(code) = KafkaCode::from_code(code) {
            return Err(Error::kafka(
                code,
                Context::group(self.group.clone()),
                message.map(|m| m.to_string()),
            ));
        }
        let addr = format!("{host}:{port}");
        let conn = Arc::new(Connection::connect(&addr, &self.opts).await?);
        *self.lock() = Some(Arc::clone(&conn));
        Ok(conn)
    }
}

/// What the heartbeat task tells the consumer.
#[derive(Debug)]
pub(crate) struct Shared {
    /// A rebalance is under way (or was asked for): rejoin at the next poll.
    pub(crate) rejoin: AtomicBool,
    /// The membership is gone (session expired, fenced generation): partitions are lost.
    pub(crate) lost: Mutex<Option<String>>,
    /// Whether the member id must be dropped before rejoining (UNKNOWN_MEMBER_ID).
    pub(crate) reset_member: AtomicBool,
    /// An error that ends the consumer (FENCED_INSTANCE_ID, authorization).
    pub(crate) fatal: Mutex<Option<(KafkaCode, String)>>,
    /// When the application last polled (for max.poll.interval.ms).
    pub(crate) last_poll: Mutex<Instant>,
    /// When the coordinator last confirmed this membership (a successful heartbeat or join).
    /// `Instant` is monotonic and advances while the process is stopped (SIGSTOP).
    pub(crate) last_heartbeat: Mutex<Instant>,
    /// Wakes a poll that waits for fetches when any of the above changes.
    pub(crate) notify: Notify,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            rejoin: AtomicBool::new(false),
            lost: Mutex::new(None),
            reset_member: AtomicBool::new(false),
            fatal: Mutex::new(None),
            last_poll: Mutex::new(Instant::now()),
            last_heartbeat: Mutex::new(Instant::now()),
            notify: Notify::new(),
        }
    }

    pub(crate) fn polled(&self) {
        *self.last_poll.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn since_poll(&self) -> Duration {
        self.last_poll
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// The coordinator confirmed the membership just now.
    pub(crate) fn heartbeat_ok(&self) {
        *self
            .last_heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Whether the last confirmation of the membership is older than `session_timeout`: the
    /// broker may have expired this member (coordinator unreachable, or this process stopped),
    /// so records fetched for it must not be handed out before the membership is confirmed.
    pub(crate) fn heartbeat_stale(&self, session_timeout: Duration) -> bool {
        self.last_heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            > session_timeout
    }

    fn set_lost(&self, why: String, reset_member: bool) {
        *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        if reset_member {
            self.reset_member.store(true, Ordering::Release);
        }
        self.rejoin.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn take_lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub(crate) fn fatal(&self) -> Option<(KafkaCode, String)> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Settings of membership.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) group: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) assignors: Vec<&'static str>,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) backoff: Duration,
    pub(crate) backoff_max: Duration,
}

/// This member of the group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) settings: Settings,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    /// The assignor the group chose at the last join.
    pub(crate) protocol: Option<String>,
    pub(crate) coordinator: Arc<Coordinator>,
    pub(crate) shared: Arc<Shared>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Group {
    pub(crate) fn new(settings: Settings, coordinator: Arc<Coordinator>) -> Group {
        Group {
            settings,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            coordinator,
            shared: Arc::new(Shared::new()),
            heartbeat: None,
        }
    }

    fn ctx(&self) -> Context {
        Context::group(self.settings.group.clone())
    }

    /// Cooperative rebalancing: only when every configured assignor supports it (Java's rule).
    pub(crate) fn cooperative(&self) -> bool {
        self.settings
            .assignors
            .iter()
            .all(|a| assignor::is_cooperative(a))
    }

    fn err(&self, code: i16, message: Option<StrBytes>) -> Error {
        Error::kafka(KafkaCode(code), self.ctx(), message.map(|m| m.to_string()))
    }

    pub(crate) fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// Forgets the generation (and, if asked, the member id) after the membership was lost.
    pub(crate) fn reset(&mut self, member_id_too: bool) {
        self.stop_heartbeat();
        self.generation = -1;
        if member_id_too {
            self.member_id.clear();
        }
    }

    /// Joins (or rejoins) the group and returns this member's assignment.
    ///
    /// `owned` is sent to the leader (cooperative rebalancing keeps what it can); the leader
    /// reads partition counts through `brokers`.
    pub(crate) async fn join(
        &mut self,
        topics: &[String],
        owned: &[TopicPartition],
        brokers: &Brokers,
    ) -> Result<Vec<TopicPartition>> {
        self.stop_heartbeat();
        self.shared.rejoin.store(false, Ordering::Release);
        if self.shared.reset_member.swap(false, Ordering::AcqRel) {
            self.member_id.clear();
        }
        let deadline =
            Instant::now() + self.settings.rebalance_timeout + self.settings.session_timeout;
        let mut backoff = self.settings.backoff;
        let mut last: Option<Error> = None;
        while Instant::now() < deadline {
            match self.join_once(topics, owned, brokers).await {
                Ok(Some(assignment)) => {
                    self.start_heartbeat();
                    return Ok(assignment);
                }
                Ok(None) => continue, // rejoin at once (MEMBER_ID_REQUIRED, rebalance restarted)
                Err(e) => {
                    if !retriable_in_join(&e) {
                        if e.code() == Some(KafkaCode::FENCED_INSTANCE_ID) {
                            *self.shared.fatal.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some((KafkaCode::FENCED_INSTANCE_ID, e.to_string()));
                        }
                        return Err(e);
                    }
                    tracing::debug!(group = %self.settings.group, error = %e, "join failed, retrying");
                    last = Some(e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout {
            what: "joining the group".into(),
            context: Box::new(self.ctx()),
            after: self.settings.rebalance_timeout,
        }))
    }

    /// One JoinGroup + SyncGroup. `Ok(None)`: join again now.
    async fn join_once(
        &mut self,
        topics: &[String],
        owned: &[TopicPartition],
        brokers: &Brokers,
    ) -> Result<Option<Vec<TopicPartition>>> {
        let conn = self.coordinator.connection().await.inspect_err(|_| {
            self.coordinator.invalidate();
        })?;
        let sub = Subscription {
            topics: topics.to_vec(),
            owned: if self.cooperative() {
                owned.to_vec()
            } else {
                Vec::new()
            },
            generation: self.generation,
            user_data: None,
        };
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.settings.group)))
            .with_session_timeout_ms(ms(self.settings.session_timeout))
            .with_rebalance_timeout_ms(ms(self.settings.rebalance_timeout))
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.settings.instance_id.as_deref().map(str_bytes))
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(
                self.settings
                    .assignors
                    .iter()
                    .map(|name| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_metadata(assignor::encode_subscription(name, &sub))
                    })
                    .collect(),
            )
            .with_reason(Some(StrBytes::from_static_str("gregor consumer joining")));
        // The broker holds JoinGroup until every member has joined: up to the rebalance timeout.
        let wait = self.settings.rebalance_timeout + self.settings.request_timeout;
        let response = match conn.send_timeout(&request, JOIN_GROUP_MAX, wait).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator.invalidate();
                return Err(e);
            }
        };
        match KafkaCode(response.error_code) {
            KafkaCode::NONE => {}
            KafkaCode::MEMBER_ID_REQUIRED => {
                self.member_id = response.member_id.to_string();
                return Ok(None);
            }
            KafkaCode::UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(None);
            }
            KafkaCode::REBALANCE_IN_PROGRESS | KafkaCode::ILLEGAL_GENERATION => return Ok(None),
            KafkaCode::NOT_COORDINATOR
            | KafkaCode::COORDINATOR_NOT_AVAILABLE
            | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS => {
                self.coordinator.invalidate();
                return Err(self.err(response.error_code, None));
            }
            _ => return Err(self.err(response.error_code, None)),
        }
        self.member_id = response.member_id.to_string();
        self.generation = response.generation_id;
        let protocol = response
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        self.protocol = Some(protocol.clone());
        let assignments = if response.leader == response.member_id {
            self.lead(&protocol, &response.members, brokers).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.settings.group)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.settings.instance_id.as_deref().map(str_bytes))
            .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
            .with_protocol_name(Some(str_bytes(&protocol)))
            .with_assignments(assignments);
        let response = match conn.send_timeout(&request, SYNC_GROUP_MAX, wait).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator.invalidate();
                return Err(e);
            }
        };
        match KafkaCode(response.error_code) {
            KafkaCode::NONE => {}
            KafkaCode::REBALANCE_IN_PROGRESS | KafkaCode::ILLEGAL_GENERATION => return Ok(None),
            KafkaCode::UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(None);
            }
            KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator.invalidate();
                return Err(self.err(response.error_code, None));
            }
            _ => return Err(self.err(response.error_code, None)),
        }
        let assignment =
            assignor::decode_assignment(&response.assignment).map_err(|m| Error::Protocol {
                broker: conn.addr().to_owned(),
                message: format!(
                    "group {}: undecodable assignment from the leader: {m}",
                    self.settings.group
                ),
            })?;
        tracing::info!(
            group = %self.settings.group,
            generation = self.generation,
            member = %self.member_id,
            protocol = %protocol,
            partitions = assignment.len(),
            "joined group"
        );
        Ok(Some(assignment))
    }

    /// The leader's part: decode every member's subscription, read partition counts, assign.
    async fn lead(
        &self,
        protocol: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
        brokers: &Brokers,
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut decoded = Vec::with_capacity(members.len());
        for m in members {
            let subscription =
                assignor::decode_subscription(&m.metadata).map_err(|e| Error::Protocol {
                    broker: format!("group {}", self.settings.group),
                    message: format!("member {}'s subscription is undecodable: {e}", m.member_id),
                })?;
            decoded.push(Member {
                id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                subscription,
            });
        }
        let topics: BTreeSet<&str> = decoded
            .iter()
            .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
            .collect();
        let topics: Vec<&str> = topics.into_iter().collect();
        let meta = brokers.metadata(Some(&topics)).await?;
        let counts: BTreeMap<String, i32> = meta
            .topics
            .iter()
            .filter(|t| t.error.is_none() && !t.partitions.is_empty())
            .map(|t| {
                (
                    t.name.clone(),
                    i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                )
            })
            .collect();
        let assignment = assignor::assign(protocol, &decoded, &counts);
        tracing::debug!(group = %self.settings.group, ?assignment, "leader assigned");
        Ok(assignment
            .into_iter()
            .map(|(member, partitions)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member))
                    .with_assignment(assignor::encode_assignment(&partitions))
            })
            .collect())
    }

    fn start_heartbeat(&mut self) {
        self.stop_heartbeat();
        let task = Heartbeat {
            group: self.settings.group.clone(),
            member_id: self.member_id.clone(),
            instance_id: self.settings.instance_id.clone(),
            generation: self.generation,
            interval: self.settings.heartbeat_interval,
            backoff: self.settings.backoff.min(self.settings.heartbeat_interval),
            session_timeout: self.settings.session_timeout,
            max_poll_interval: self.settings.rebalance_timeout,
            coordinator: Arc::clone(&self.coordinator),
            shared: Arc::clone(&self.shared),
        };
        self.shared.polled();
        self.shared.heartbeat_ok();
        self.heartbeat = Some(tokio::spawn(task.run()));
    }

    /// Asks the coordinator, with one heartbeat, whether this member and generation are still
    /// in the group (after no confirmation for `session.timeout.ms`). The answer is recorded in
    /// `shared` as the heartbeat task's would be.
    pub(crate) async fn confirm(&self) -> Beat {
        let wait = self
            .settings
            .request_timeout
            .min(self.settings.session_timeout);
        beat(
            &self.coordinator,
            &self.shared,
            &self.settings.group,
            &self.member_id,
            self.settings.instance_id.as_deref(),
            self.generation,
            wait,
        )
        .await
    }

    /// LeaveGroup (dynamic members only: a static member's restart must not rebalance).
    pub(crate) async fn leave(&mut self, reason: &str) -> Result<()> {
        self.stop_heartbeat();
        if self.settings.instance_id.is_some() || self.member_id.is_empty() {
            return Ok(());
        }
        let result = send_leave(
            &self.coordinator,
            &self.settings.group,
            &self.member_id,
            reason,
        )
        .await;
        self.generation = -1;
        self.member_id.clear();
        result
    }

    /// Commits `offsets` for this member's generation (fenced by the broker if it is stale).
    /// With no generation (explicit assignment) the commit is a "simple" group commit.
    pub(crate) async fn commit(&self, offsets: &[(String, i32, i64)]) -> Result<()> {
        commit(
            &self.coordinator,
            &self.settings.group,
            self.generation,
            &self.member_id,
            self.settings.instance_id.as_deref(),
            offsets,
        )
        .await
    }

    /// Committed offsets of `partitions` (`None`: nothing committed).
    pub(crate) async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        fetch_offsets(
            &self.coordinator,
            &self.settings.group,
            partitions,
            self.settings.backoff,
        )
        .await
    }
}

/// Errors that say nothing about the group, only that its coordinator was not reached or is
/// not the one asked (the answer to them: find the coordinator again).
fn coordinator_unknown(e: &Error) -> bool {
    match e.code() {
        Some(c) => matches!(
            c,
            KafkaCode::NOT_COORDINATOR
                | KafkaCode::COORDINATOR_NOT_AVAILABLE
                | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
        ),
        None => matches!(e, Error::Connection { .. } | Error::Timeout { .. }),
    }
}

fn retriable_in_join(e: &Error) -> bool {
    match e.code() {
        Some(c) => {
            matches!(
                c,
                KafkaCode::NOT_COORDINATOR
                    | KafkaCode::COORDINATOR_NOT_AVAILABLE
                    | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                    | KafkaCode::REBALANCE_IN_PROGRESS
            ) || (c.is_retriable() && !c.is_auth())
        }
        None => e.is_retriable(),
    }
}

async fn send_leave(
    coordinator: &Coordinator,
    group: &str,
    member_id: &str,
    reason: &str,
) -> Result<()> {
    // v3+: the leaving members are listed (a batch of one).
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_members(vec![
            MemberIdentity::default()
                .with_member_id(str_bytes(member_id))
                .with_reason(Some(str_bytes(reason))),
        ]);
    let conn = coordinator.connection().await?;
    let response = conn.send(&request, LEAVE_GROUP_MAX).await?;
    let code = response
        .members
        .iter()
        .map(|m| m.error_code)
        .find(|c| *c != 0)
        .unwrap_or(response.error_code);
    match KafkaCode(code) {
        KafkaCode::NONE | KafkaCode::UNKNOWN_MEMBER_ID => Ok(()),
        c => Err(Error::kafka(c, Context::group(group), None)),
    }
}

/// OffsetCommit v8. Partition errors name the partition.
pub(crate) async fn commit(
    coordinator: &Coordinator,
    group: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &[(String, i32, i64)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (t, p, o) in offsets {
        by_topic.entry(t.as_str()).or_default().push((*p, *o));
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member_id))
        .with_group_instance_id(instance_id.map(str_bytes))
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(-1)
                                        .with_committed_metadata(Some(StrBytes::from_static_str(
                                            "",
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    // The coordinator moved, is still loading the group or cannot be reached (a cluster that
    // has just started, a broker that was killed or stopped): mark it unknown, find it again
    // and resend, for a bounded time. The commit carries this member's generation, so a
    // resend is fenced exactly as the first one was, and resending the same offsets after a
    // lost answer changes nothing.
    let started = Instant::now();
    let mut backoff = FIND_COORDINATOR_BACKOFF;
    loop {
        match commit_once(coordinator, group, &request).await {
            Err(e) if coordinator_unknown(&e) && started.elapsed() + backoff < COMMIT_PATIENCE => {
                coordinator.invalidate();
                tracing::debug!(group, error = %e, ?backoff, "commit: coordinator not ready, again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// One OffsetCommit round trip. Partition errors name the partition.
async fn commit_once(
    coordinator: &Coordinator,
    group: &str,
    request: &OffsetCommitRequest,
) -> Result<()> {
    let conn = coordinator.connection().await?;
    let response = match conn.send(request, OFFSET_COMMIT_MAX).await {
        Ok(r) => r,
        Err(e) => {
            coordinator.invalidate();
            return Err(e);
        }
    };
    for t in &response.topics {
        for p in &t.partitions {
            if let Some(code) = KafkaCode::from_code(p.error_code) {
                if matches!(
                    code,
                    KafkaCode::NOT_COORDINATOR | KafkaCode::COORDINATOR_NOT_AVAILABLE
                ) {
                    coordinator.invalidate();
                }
                return Err(Error::kafka(
                    code,
                    Context::partition(t.name.0.to_string(), p.partition_index).with_group(group),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// OffsetFetch v8 (require_stable: pending transactional commits are waited out).
pub(crate) async fn fetch_offsets(
    coordinator: &Coordinator,
    group: &str,
    partitions: &[TopicPartition],
    backoff: Duration,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let request = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_topics(Some(
                    by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(str_bytes(t)))
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                )),
        ]);
    let mut attempt = 0u32;
    let started = Instant::now();
    loop {
        attempt += 1;
        // An unreachable or moving coordinator: find it again, for a bounded time.
        let sent = match coordinator.connection().await {
            Ok(conn) => conn.send(&request, OFFSET_FETCH_MAX).await,
            Err(e) => Err(e),
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                coordinator.invalidate();
                if coordinator_unknown(&e) && started.elapsed() + backoff < COMMIT_PATIENCE {
                    tracing::debug!(group, error = %e, "offset fetch: coordinator unknown, again");
                    tokio::time::sleep(backoff.max(FIND_COORDINATOR_BACKOFF)).await;
                    continue;
                }
                return Err(e);
            }
        };
        let mut out = HashMap::new();
        let mut retry: Option<Error> = None;
        for g in &response.groups {
            if let Some(code) = KafkaCode::from_code(g.error_code) {
                retry = Some(Error::kafka(code, Context::group(group), None));
                break;
            }
            for t in &g.topics {
                for p in &t.partitions {
                    if let Some(code) = KafkaCode::from_code(p.error_code) {
                        retry = Some(Error::kafka(
                            code,
                            Context::partition(t.name.0.to_string(), p.partition_index)
                                .with_group(group),
                            None,
                        ));
                        break;
                    }
                    out.insert(
                        (t.name.0.to_string(), p.partition_index),
                        (p.committed_offset >= 0).then_some(p.committed_offset),
                    );
                }
            }
        }
        match retry {
            None => return Ok(out),
            Some(e) => {
                let code = e.code().unwrap_or(KafkaCode::NONE);
                let again = code == UNSTABLE_OFFSET_COMMIT
                    || matches!(
                        code,
                        KafkaCode::NOT_COORDINATOR
                            | KafkaCode::COORDINATOR_NOT_AVAILABLE
                            | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                    );
                if !again || attempt > 50 {
                    return Err(e);
                }
                if code != UNSTABLE_OFFSET_COMMIT {
                    coordinator.invalidate();
                }
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// What a heartbeat's answer means for the membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The coordinator knows this member and generation.
    Confirmed,
    /// The member is known but a rebalance is under way: the rejoin flag is set.
    Rebalancing,
    /// The membership is gone or the consumer must stop: `lost` or `fatal` is set.
    Ended,
    /// No answer from a coordinator (unreachable, moved, loading): it is forgotten and found
    /// again at the next attempt; member id, generation and partitions are kept.
    Unknown,
}

/// One Heartbeat round trip, waiting at most `wait` for the answer.
async fn heartbeat_once(
    coordinator: &Coordinator,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
    wait: Duration,
) -> Result<()> {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id(generation)
        .with_member_id(str_bytes(member_id))
        .with_group_instance_id(instance_id.map(str_bytes));
    let conn = coordinator.connection().await?;
    let response = conn.send_timeout(&request, HEARTBEAT_MAX, wait).await?;
    Error::check(response.error_code, || Context::group(group.to_owned()))
}

/// Sends one heartbeat and records what it means in `shared` (lost, fatal, rejoin, or the
/// time of the last confirmation).
async fn beat(
    coordinator: &Coordinator,
    shared: &Shared,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
    wait: Duration,
) -> Beat {
    match heartbeat_once(coordinator, group, member_id, instance_id, generation, wait).await {
        Ok(()) => {
            shared.heartbeat_ok();
            Beat::Confirmed
        }
        Err(e) => match e.code() {
            Some(KafkaCode::REBALANCE_IN_PROGRESS) => {
                // The member is still known: keep the session alive until the application
                // polls and rejoins.
                shared.heartbeat_ok();
                if !shared.rejoin.swap(true, Ordering::AcqRel) {
                    tracing::info!(group, "rebalance started");
                    shared.notify.notify_waiters();
                }
                Beat::Rebalancing
            }
            Some(KafkaCode::UNKNOWN_MEMBER_ID) => {
                shared.set_lost(e.to_string(), true);
                Beat::Ended
            }
            Some(KafkaCode::ILLEGAL_GENERATION) => {
                shared.set_lost(e.to_string(), false);
                Beat::Ended
            }
            Some(KafkaCode::FENCED_INSTANCE_ID) => {
                *shared.fatal.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((KafkaCode::FENCED_INSTANCE_ID, e.to_string()));
                shared.set_lost(e.to_string(), true);
                Beat::Ended
            }
            Some(code) if code.is_auth() => {
                *shared.fatal.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((code, e.to_string()));
                shared.notify.notify_waiters();
                Beat::Ended
            }
            _ => {
                // Coordinator moved, loading or unreachable: mark it unknown (find it again at
                // the next attempt). Not a reason to give the partitions up: only the
                // coordinator can say the membership is gone.
                coordinator.invalidate();
                tracing::debug!(group, error = %e, "heartbeat failed: coordinator unknown");
                Beat::Unknown
            }
        },
    }
}

/// The background heartbeat of one generation.
struct Heartbeat {
    group: String,
    member_id: String,
    instance_id: Option<String>,
    generation: i32,
    interval: Duration,
    backoff: Duration,
    session_timeout: Duration,
    max_poll_interval: Duration,
    coordinator: Arc<Coordinator>,
    shared: Arc<Shared>,
}

impl Heartbeat {
    async fn run(self) {
        let mut wait = self.interval;
        let mut warned = false;
        loop {
            tokio::time::sleep(wait).await;
            if self.shared.since_poll() > self.max_poll_interval {
                tracing::warn!(
                    group = %self.group,
                    "no poll for max.poll.interval.ms ({:?}): leaving the group so its partitions move",
                    self.max_poll_interval
                );
                if self.instance_id.is_none() {
                    let _ = send_leave(
                        &self.coordinator,
                        &self.group,
                        &self.member_id,
                        "max.poll.interval.ms expired",
                    )
                    .await;
                }
                self.shared.set_lost(
                    format!(
                        "no poll within max.poll.interval.ms ({:?})",
                        self.max_poll_interval
                    ),
                    true,
                );
                return;
            }
            let outcome = beat(
                &self.coordinator,
                &self.shared,
                &self.group,
                &self.member_id,
                self.instance_id.as_deref(),
                self.generation,
                self.session_timeout,
            )
            .await;
            match outcome {
                Beat::Confirmed | Beat::Rebalancing => {
                    if warned {
                        tracing::info!(group = %self.group, "coordinator found again: membership confirmed");
                    }
                    warned = false;
                    wait = self.interval;
                }
                Beat::Ended => return,
                Beat::Unknown => {
                    if !warned && self.shared.heartbeat_stale(self.session_timeout) {
                        warned = true;
                        tracing::warn!(
                            group = %self.group,
                            "no successful heartbeat for session.timeout.ms ({:?}): looking for the \
                             coordinator; partitions kept until it answers",
                            self.session_timeout
                        );
                    }
                    // Look for the coordinator again soon (growing backoff up to the interval).
                    wait = if wait >= self.interval {
                        self.backoff
                    } else {
                        (wait * 2).min(self.interval)
                    };
                }
            }
        }
    }
}
