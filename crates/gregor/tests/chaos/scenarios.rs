//! The scenarios: broker faults under a group of child-process consumers, a paused consumer,
//! a chain of two Worker groups with members quitting and joining, and dead-lettering while
//! the dead-letter topic's leader dies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gregor::ProducerPublisher;
use gregor::client::{Consumer, ProducerRecord, TopicPartition};
use gregor::codec::{CodecRegistry, JsonCodec};
use gregor::event::Event;
use gregor::handler::dead_letter::DeadLetterLayer;
use gregor::handler::{Error, Fallback, Message, Router, Stack, handler_fn};
use gregor_testkit::{Cluster, create_topic, unique_topic};

use crate::ledger::{Acked, GroupLog, Id, Read, Verdict, identity_duplicates, tick, validate};
use crate::load::{
    ChildMember, Feed, Forward, SESSION_TIMEOUT_MS, WorkerMember, config, freeze_if, plain,
    producer, spawn_producer, spawn_watcher,
};

/// Run sizes: the (`GREGOR_CHAOS=full`) or a short one for every `cargo test`.
#[derive(Debug, Clone)]
pub(crate) struct Size {
    pub(crate) name: &'static str,
    pub(crate) records: u64,
    pub(crate) duration: Duration,
    pub(crate) bounces: usize,
    pub(crate) rolling: usize,
    pub(crate) broker_pauses: usize,
    pub(crate) consumer_pauses: usize,
    pub(crate) churn: usize,
    pub(crate) dlq_kills: usize,
    /// How long a group may take to catch up after the faults end before it counts as stuck.
    pub(crate) catch_up: Duration,
}

impl Size {
    pub(crate) fn full() -> Size {
        Size {
            name: "full",
            records: 100_000,
            duration: Duration::from_secs(60),
            bounces: 5,
            rolling: 3,
            broker_pauses: 2,
            consumer_pauses: 2,
            churn: 8,
            dlq_kills: 3,
            catch_up: Duration::from_secs(240),
        }
    }

    pub(crate) fn short() -> Size {
        Size {
            name: "short",
            records: 4_000,
            duration: Duration::from_secs(8),
            bounces: 1,
            rolling: 1,
            broker_pauses: 1,
            consumer_pauses: 1,
            churn: 2,
            dlq_kills: 1,
            catch_up: Duration::from_secs(180),
        }
    }

    fn rate(&self) -> f64 {
        self.records as f64 / self.duration.as_secs_f64()
    }
}

/// One line of the summary table, and what went wrong.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) records: usize,
    pub(crate) faults: usize,
    pub(crate) lost: usize,
    pub(crate) duplicated: usize,
    pub(crate) zombie: usize,
    pub(crate) recovery: Option<Duration>,
    pub(crate) took: Duration,
    pub(crate) failures: Vec<String>,
}

impl Row {
    fn from_verdict(scenario: String, faults: usize, v: &Verdict, took: Duration) -> Row {
        let mut failures = Vec::new();
        if v.violations() > 0 {
            failures.push(format!(
                "{scenario}: lost {}, re-read outside the uncommitted window {}, two members in one generation {}, two members at once {}, order {}",
                v.lost, v.outside_window, v.same_generation, v.overlapping, v.order
            ));
            failures.extend(v.problems.iter().map(|p| format!("{scenario}: {p}")));
        }
        if v.acked == 0 {
            failures.push(format!("{scenario}: nothing was acknowledged"));
        }
        Row {
            scenario,
            records: v.acked,
            faults,
            lost: v.lost,
            duplicated: v.duplicated,
            zombie: v.zombie_reads,
            recovery: v.recovery,
            took,
            failures,
        }
    }
}

/// A tiny deterministic generator (xorshift), seeded per run and printed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap_or(0)
    }
}

const PARTITIONS: i32 = 6;
const KEYS: u32 = 64;

/// Waits until every partition of `topics` has all three replicas in sync again.
async fn wait_isr(cluster: &Cluster, topics: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(meta) = cluster.metadata(topics).await {
            let full = topics.iter().all(|t| {
                (0..PARTITIONS).all(|p| {
                    meta.partition(t, p)
                        .is_none_or(|m| m.isr.len() == 3 && m.leader >= 0)
                })
            });
            if full {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "replicas of {topics:?} not back in sync within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sleeps until `start + offset` (if that is still ahead).
async fn sleep_until(start: Instant, offset: Duration) {
    if let Some(wait) = (start + offset).checked_duration_since(Instant::now()) {
        tokio::time::sleep(wait).await;
    }
}

/// Waits until `done`, up to `bound`; the time it took, or `None` if it never happened.
async fn wait_for(bound: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// The broker and consumer faults that run under a group of child-process consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// kill -9 of a partition leader, restart, repeatedly.
    LeaderBounce,
    /// SIGTERM each broker in turn, restart it.
    Rolling,
    /// SIGSTOP a partition leader past the broker session timeout, then SIGCONT.
    BrokerPause,
    /// SIGSTOP a consumer past its session timeout, then SIGCONT.
    ConsumerPause,
}

impl Fault {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::LeaderBounce => "leader hard bounce",
            Fault::Rolling => "rolling restart",
            Fault::BrokerPause => "broker pause",
            Fault::ConsumerPause => "consumer pause",
        }
    }

    fn assignor(self) -> &'static str {
        match self {
            Fault::LeaderBounce | Fault::BrokerPause => "range",
            Fault::Rolling | Fault::ConsumerPause => "cooperative-sticky",
        }
    }

    fn count(self, size: &Size) -> usize {
        match self {
            Fault::LeaderBounce => size.bounces,
            Fault::Rolling => size.rolling,
            Fault::BrokerPause => size.broker_pauses,
            Fault::ConsumerPause => size.consumer_pauses,
        }
    }
}

/// Producer and two consumer processes on a 6-partition RF 3 topic while `fault` repeats.
pub(crate) async fn group_under_fault(cluster: &mut Cluster, size: &Size, fault: Fault) -> Row {
    let started = Instant::now();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("chaos");
    create_topic(&bootstrap, &topic, PARTITIONS, 3)
        .await
        .expect("topic");
    let group = unique_topic("chaos-group");
    let log = GroupLog::new();
    let acked = Acked::new();
    let members: Vec<ChildMember> = (0..2)
        .map(|i| {
            ChildMember::spawn(
                i,
                &bootstrap,
                &group,
                &topic,
                fault.assignor(),
                Arc::clone(&log),
            )
        })
        .collect();
    let until = Arc::new(AtomicBool::new(false));
    let feed = Feed {
        topic: topic.clone(),
        keys: KEYS,
        rate: size.rate(),
        records: size.records,
        until: Arc::clone(&until),
        acked: Arc::clone(&acked),
        poison: None,
        make: plain,
    };
    let producing = spawn_producer(producer(&bootstrap, 5).await, feed);

    let n = fault.count(size);
    let run = Instant::now();
    let mut injected = 0;
    let nodes = cluster.node_ids();
    for i in 0..n {
        sleep_until(run, size.duration.mul_f64((i as f64 + 0.5) / n as f64)).await;
        match fault {
            Fault::LeaderBounce => {
                let p = i32::try_from(i).unwrap_or(0) % PARTITIONS;
                let leader = cluster
                    .leader(&topic, p, Duration::from_secs(60))
                    .await
                    .expect("a leader");
                cluster.kill(leader).expect("kill -9");
                let new = cluster
                    .wait_new_leader(&topic, p, leader, Duration::from_secs(60))
                    .await
                    .expect("a new leader");
                eprintln!(
                    "chaos: kill -9 of node {leader} (leader of {topic}/{p}); node {new} leads"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
                cluster.restart(leader).await.expect("restart");
            }
            Fault::Rolling => {
                let node = nodes[i % nodes.len()];
                eprintln!("chaos: SIGTERM to node {node}");
                cluster.stop(node).await.expect("stop");
                tokio::time::sleep(Duration::from_secs(2)).await;
                cluster.restart(node).await.expect("restart");
            }
            Fault::BrokerPause => {
                let p = i32::try_from(i).unwrap_or(0) % PARTITIONS;
                let leader = cluster
                    .leader(&topic, p, Duration::from_secs(60))
                    .await
                    .expect("a leader");
                eprintln!("chaos: SIGSTOP of node {leader} (leader of {topic}/{p}) for 12 s");
                cluster.pause(leader).expect("pause");
                // Longer than broker.session.timeout.ms (9 s): the controller fences it.
                tokio::time::sleep(Duration::from_secs(12)).await;
                cluster.resume(leader).expect("resume");
            }
            Fault::ConsumerPause => {
                let m = &members[i % members.len()];
                let pause = Duration::from_millis(SESSION_TIMEOUT_MS * 2);
                eprintln!("chaos: SIGSTOP of consumer member {} for {pause:?}", m.id);
                m.pause();
                tokio::time::sleep(pause).await;
                m.resume();
            }
        }
        if fault != Fault::ConsumerPause {
            wait_isr(cluster, &[&topic], Duration::from_secs(180)).await;
        }
        injected += 1;
    }
    let healed = Instant::now();
    until.store(true, Ordering::Release);
    let produced = producing.await.expect("the producer task");
    let caught_up = wait_for(size.catch_up, || log.caught_up(&acked)).await;
    for m in members {
        m.stop().await;
    }
    let verdict = validate(&acked, &log, Some(healed));
    let name = format!("{} ({})", fault.name(), fault.assignor());
    let mut row = Row::from_verdict(name.clone(), injected, &verdict, started.elapsed());
    if caught_up.is_none() {
        row.failures.push(format!(
            "{name}: STUCK: the group had not read and committed everything within {:?} after the faults ended ({} of {} read; committed {:?}, ends {:?})",
            size.catch_up,
            log.reads(),
            acked.len(),
            log.committed(),
            acked.ends()
        ));
    }
    eprintln!(
        "chaos: {name}: sent {}, acknowledged {}, send failures {}, reads {} ({} of offsets nobody acknowledged: producer retries), duplicated {}, zombie reads {}, members' losses of partitions (on_lost) {}, slowest first read {:?}",
        produced.sent,
        acked.len(),
        acked.failed(),
        verdict.reads,
        verdict.unacknowledged,
        verdict.duplicated,
        verdict.zombie_reads,
        log.losses(),
        verdict.slowest
    );
    // Brokers dying, the group coordinator's node among them, is no reason for a member to
    // give its partitions up: the coordinator that takes over keeps the membership, and a
    // member that cannot reach one keeps its partitions until one answers.
    if fault == Fault::LeaderBounce && log.losses() > 0 {
        row.failures.push(format!(
            "{name}: the members reported on_lost {} times although only brokers were killed",
            log.losses()
        ));
    }
    // A member resumed after SIGSTOP confirms its membership before handing out what it had
    // fetched: no record of a partition it no longer owns may be read.
    if fault == Fault::ConsumerPause && verdict.zombie_reads > 0 {
        row.failures.push(format!(
            "{name}: {} zombie reads: a resumed member handed out records of a generation the group had left",
            verdict.zombie_reads
        ));
    }
    row
}

/// Consumer chaos after franz-go's group ETL test: source -> group 1 (Workers copying) ->
/// middle -> group 2 (Workers copying) -> sink, with members quitting without committing and
/// new ones joining while records flow.
pub(crate) async fn consumer_chaos(
    cluster: &Cluster,
    size: &Size,
    assignor: &str,
    rng: &mut Rng,
) -> Vec<Row> {
    let started = Instant::now();
    let bootstrap = cluster.bootstrap();
    let source = unique_topic("chaos-src");
    let middle = unique_topic("chaos-mid");
    let sink = unique_topic("chaos-sink");
    for t in [&source, &middle, &sink] {
        create_topic(&bootstrap, t, PARTITIONS, 3)
            .await
            .expect("topic");
    }
    let groups = [unique_topic("chaos-etl1"), unique_topic("chaos-etl2")];
    let logs = [GroupLog::new(), GroupLog::new()];
    let acked = [Acked::new(), Acked::new(), Acked::new()];
    let topics = [&source, &middle, &sink];
    let copy = producer(&bootstrap, 1).await;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = (0..2)
        .map(|g| {
            spawn_watcher(
                &bootstrap,
                &groups[g],
                topics[g],
                PARTITIONS,
                Arc::clone(&logs[g]),
                Arc::clone(&stop_watch),
            )
        })
        .collect();
    let mut next_id = 0u32;
    let spawn = async |g: usize, next_id: &mut u32| {
        *next_id += 1;
        WorkerMember::copier(
            *next_id,
            &bootstrap,
            &groups[g],
            topics[g],
            assignor,
            Some(Forward {
                producer: copy.clone(),
                topic: topics[g + 1].clone(),
                acked: Arc::clone(&acked[g + 1]),
            }),
            Arc::clone(&logs[g]),
        )
        .await
    };
    let mut members: [Vec<WorkerMember>; 2] = [Vec::new(), Vec::new()];
    for (g, list) in members.iter_mut().enumerate() {
        for _ in 0..2 {
            list.push(spawn(g, &mut next_id).await);
        }
    }
    let until = Arc::new(AtomicBool::new(false));
    let feed = Feed {
        topic: source.clone(),
        keys: KEYS,
        rate: size.rate(),
        records: size.records,
        until: Arc::clone(&until),
        acked: Arc::clone(&acked[0]),
        poison: None,
        make: plain,
    };
    let producing = spawn_producer(producer(&bootstrap, 5).await, feed);

    let run = Instant::now();
    let mut quits = 0;
    let mut joins = 0;
    for i in 0..size.churn {
        sleep_until(
            run,
            size.duration.mul_f64((i as f64 + 0.5) / size.churn as f64),
        )
        .await;
        let g = i % 2;
        let victim = rng.below(members[g].len());
        let m = members[g].remove(victim);
        eprintln!(
            "chaos: {assignor}: worker {} of group {} quits without committing",
            m.id,
            g + 1
        );
        m.kill();
        quits += 1;
        let m = spawn(g, &mut next_id).await;
        eprintln!("chaos: {assignor}: worker {} joins group {}", m.id, g + 1);
        members[g].push(m);
        joins += 1;
        // Every other round, one more member joins and a member leaves gracefully later.
        if i % 2 == 1 {
            let extra = spawn(g, &mut next_id).await;
            eprintln!(
                "chaos: {assignor}: worker {} joins group {}",
                extra.id,
                g + 1
            );
            members[g].push(extra);
            joins += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let leaving = members[g].remove(0);
            eprintln!(
                "chaos: {assignor}: worker {} leaves group {} (graceful)",
                leaving.id,
                g + 1
            );
            leaving.stop().await;
        }
    }
    let healed = Instant::now();
    until.store(true, Ordering::Release);
    let produced = producing.await.expect("the producer task");
    let caught_up = wait_for(size.catch_up, || {
        logs[0].caught_up(&acked[0]) && logs[1].caught_up(&acked[1])
    })
    .await;
    for group in members {
        for m in group {
            m.stop().await;
        }
    }
    stop_watch.store(true, Ordering::Release);
    for w in watchers {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    let faults = quits + joins;
    let mut rows = Vec::new();
    for g in 0..2 {
        let v = validate(&acked[g], &logs[g], Some(healed));
        let name = format!("consumer chaos ({assignor}) group {}", g + 1);
        eprintln!(
            "chaos: {name}: reads {}, duplicated {}, slowest first read (partition, time) {:?}",
            v.reads, v.duplicated, v.slowest
        );
        let mut row = Row::from_verdict(name.clone(), faults, &v, started.elapsed());
        if caught_up.is_none() {
            row.failures.push(format!(
                "{name}: STUCK: not caught up within {:?} after the churn ended ({} reads of {} acknowledged; committed {:?}, ends {:?})",
                size.catch_up,
                logs[g].reads(),
                acked[g].len(),
                logs[g].committed(),
                acked[g].ends()
            ));
        }
        rows.push(row);
    }
    // End to end: every identity acknowledged at the source reached the sink, first copies
    // in per-key order.
    let sink_ids: BTreeSet<Id> = acked[2].ids().into_iter().collect();
    let missing: Vec<Id> = acked[0]
        .ids()
        .into_iter()
        .filter(|id| !sink_ids.contains(id))
        .collect();
    let order: Vec<String> = acked[1]
        .order_violations()
        .into_iter()
        .chain(acked[2].order_violations())
        .collect();
    let last = rows.last_mut().expect("two rows");
    if !missing.is_empty() {
        last.lost += missing.len();
        last.failures.push(format!(
            "consumer chaos ({assignor}): LOST end to end: {} source records never reached {sink}: {:?}",
            missing.len(),
            missing.iter().take(10).map(|i| i.text()).collect::<Vec<_>>()
        ));
    }
    if !order.is_empty() {
        last.failures.push(format!(
            "consumer chaos ({assignor}): ORDER across the chain: {} violations, e.g. {:?}",
            order.len(),
            &order[..order.len().min(5)]
        ));
    }
    eprintln!(
        "chaos: consumer chaos ({assignor}): sent {}, acknowledged {}, copies in the middle {} ({} duplicates), in the sink {} ({} duplicates)",
        produced.sent,
        acked[0].len(),
        acked[1].len(),
        identity_duplicates(&acked[1]),
        acked[2].len(),
        identity_duplicates(&acked[2]),
    );
    rows
}

fn is_poison(id: Id) -> bool {
    id.seq % 20 == 7
}

fn dlq_record(topic: &str, id: Id) -> ProducerRecord {
    if is_poison(id) {
        return ProducerRecord::new(topic.to_owned(), format!("\u{0}poison {}", id.text()))
            .key(id.key_bytes());
    }
    let event = Event::new(
        "chaos.record",
        "chaos",
        serde_json::json!({ "id": id.text() }),
    );
    let mut r =
        ProducerRecord::new(topic.to_owned(), event.to_json().expect("json")).key(id.key_bytes());
    for h in event.headers(Some(1)) {
        r = r.header(h.key, h.value.unwrap_or_default());
    }
    r
}

/// Poison records dead-lettered while the dead-letter topic's leader is killed.
pub(crate) async fn dlq_under_faults(cluster: &mut Cluster, size: &Size) -> Row {
    let started = Instant::now();
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("chaos-dlq-src");
    let dlq = format!("{topic}.dlq");
    create_topic(&bootstrap, &topic, PARTITIONS, 3)
        .await
        .expect("topic");
    create_topic(&bootstrap, &dlq, 1, 3)
        .await
        .expect("dlq topic");
    let group = unique_topic("chaos-dlq-group");
    let log = GroupLog::new();
    let good = Acked::new();
    let poison = Acked::new();
    let publisher = Arc::new(producer(&bootstrap, 1).await);
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = spawn_watcher(
        &bootstrap,
        &group,
        &topic,
        PARTITIONS,
        Arc::clone(&log),
        Arc::clone(&stop_watch),
    );
    let codecs = Arc::new(CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())));
    let mut members = Vec::new();
    for member in 0..2u32 {
        let killed = Arc::new(AtomicBool::new(false));
        let (k, l) = (Arc::clone(&killed), Arc::clone(&log));
        let handle = handler_fn(move |m: Message| {
            let (k, l) = (Arc::clone(&k), Arc::clone(&l));
            async move {
                let start = tick();
                freeze_if(&k).await;
                let id = m
                    .event()?
                    .data
                    .get("id")
                    .and_then(|v| v.as_str())
                    .and_then(Id::parse);
                l.read(Read {
                    start,
                    end: tick(),
                    when: Instant::now(),
                    member,
                    generation: -1,
                    epoch: 0,
                    partition: m.partition(),
                    offset: m.offset(),
                    id,
                });
                Ok::<(), Error>(())
            }
        });
        let handler = Stack::new(
            Router::new()
                .route("chaos.record", handle)
                .fallback(Fallback::DeadLetter),
        )
        .dead_letter(DeadLetterLayer::new(Arc::new(ProducerPublisher::new(
            Arc::clone(&publisher),
        ))))
        .build();
        members.push(
            WorkerMember::start(
                member,
                &bootstrap,
                &group,
                &topic,
                "range",
                handler,
                Some(Arc::clone(&codecs)),
                killed,
            )
            .await,
        );
    }
    let until = Arc::new(AtomicBool::new(false));
    let feed = Feed {
        topic: topic.clone(),
        keys: KEYS,
        rate: size.rate(),
        records: size.records,
        until: Arc::clone(&until),
        acked: Arc::clone(&good),
        poison: Some((is_poison, Arc::clone(&poison))),
        make: dlq_record,
    };
    let producing = spawn_producer(producer(&bootstrap, 5).await, feed);

    let run = Instant::now();
    let mut injected = 0;
    for i in 0..size.dlq_kills {
        sleep_until(
            run,
            size.duration
                .mul_f64((i as f64 + 0.5) / size.dlq_kills as f64),
        )
        .await;
        let leader = cluster
            .leader(&dlq, 0, Duration::from_secs(60))
            .await
            .expect("a leader");
        cluster.kill(leader).expect("kill -9");
        let new = cluster
            .wait_new_leader(&dlq, 0, leader, Duration::from_secs(60))
            .await
            .expect("a new leader");
        eprintln!("chaos: kill -9 of node {leader} (leader of {dlq}/0); node {new} leads");
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.restart(leader).await.expect("restart");
        wait_isr(cluster, &[&topic, &dlq], Duration::from_secs(180)).await;
        injected += 1;
    }
    let healed = Instant::now();
    until.store(true, Ordering::Release);
    let produced = producing.await.expect("the producer task");
    let ends = |a: &Acked, b: &Acked| {
        let mut e = a.ends();
        for (p, o) in b.ends() {
            let x = e.entry(p).or_insert(0);
            *x = (*x).max(o);
        }
        e
    };
    let all_ends: BTreeMap<i32, i64> = ends(&good, &poison);
    let caught_up = wait_for(size.catch_up, || {
        let committed = log.committed();
        all_ends
            .iter()
            .all(|(p, e)| committed.get(p).copied().unwrap_or(0) >= *e)
            && log.caught_up(&good)
    })
    .await;
    for m in members {
        m.stop().await;
    }
    stop_watch.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || watcher.join()).await;

    // Every acknowledged poison record is in the dead-letter topic, named by its origin.
    let dead = read_dead_letters(&bootstrap, &dlq, poison.len()).await;
    let poison_records = poison.snapshot_ids();
    let mut dead_count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (p, o) in &dead {
        *dead_count.entry((*p, *o)).or_default() += 1;
    }
    let missing: Vec<&(i32, i64)> = poison_records
        .iter()
        .filter(|k| !dead_count.contains_key(*k))
        .collect();
    let dead_duplicates: usize = dead_count.values().map(|c| c - 1).sum();

    let v = validate(&good, &log, Some(healed));
    let name = "DLQ leader kill (range)".to_owned();
    eprintln!(
        "chaos: {name}: good records read {}, duplicated {}, slowest first read (partition, time) {:?}",
        v.reads, v.duplicated, v.slowest
    );
    let mut row = Row::from_verdict(name.clone(), injected, &v, started.elapsed());
    row.records += poison.len();
    row.lost += missing.len();
    row.duplicated += dead_duplicates;
    if !missing.is_empty() {
        row.failures.push(format!(
            "{name}: LOST: {} poison records never reached {dlq}, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    if caught_up.is_none() {
        row.failures.push(format!(
            "{name}: STUCK: not committed to the end within {:?} (committed {:?}, ends {all_ends:?})",
            size.catch_up,
            log.committed()
        ));
    }
    eprintln!(
        "chaos: {name}: sent {}, good acknowledged {}, poison acknowledged {}, dead letters {} ({} duplicates), send failures {}",
        produced.sent,
        good.len(),
        poison.len(),
        dead.len(),
        dead_duplicates,
        good.failed() + poison.failed()
    );
    row
}

/// `(original_partition, original_offset)` of every record in the dead-letter topic.
async fn read_dead_letters(bootstrap: &str, dlq: &str, expect: usize) -> Vec<(i32, i64)> {
    let c = config(bootstrap)
        .set("auto.offset.reset", "earliest")
        .expect("config");
    let mut consumer = Consumer::connect(&c).await.expect("a reader");
    consumer
        .assign(&[TopicPartition::new(dlq, 0)])
        .expect("assign");
    let mut out = Vec::new();
    let mut distinct = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while Instant::now() < deadline && (distinct.len() < expect || quiet < 3) {
        let batch = consumer
            .poll(Duration::from_millis(500))
            .await
            .unwrap_or_default();
        quiet = if batch.is_empty() { quiet + 1 } else { 0 };
        for r in batch {
            let get = |k: &str| {
                r.header(k)
                    .and_then(|h| h.value.as_deref())
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.parse::<i64>().ok())
            };
            if let (Some(p), Some(o)) = (get("original_partition"), get("original_offset")) {
                let p = i32::try_from(p).unwrap_or(-1);
                distinct.insert((p, o));
                out.push((p, o));
            }
        }
    }
    out
}
