//! What was acknowledged, what was read, what was committed, and the validator that compares
//! them (after Kafka's produce-consume-validate tests).
//!
//! Every record carries an identity `k<key>:<seq>`: one producer task sends the keys round
//! robin, so `seq` grows per key in send order. The validator checks, per consumer group:
//! - lost: an acknowledged `(partition, offset)` nobody read (or read with another identity);
//! - duplicated: reads beyond the first of a `(partition, offset)`, counted;
//! - outside the uncommitted window: a re-read of an offset the group had already committed
//!   past when the re-read happened (a zombie member reading with a generation older than one
//!   already seen is counted apart: Kafka fences its commits, not its reads);
//! - two members at once: one offset read by two members in the same generation, or (for
//!   Worker groups, where the generation is not visible) handled by two members in
//!   overlapping time spans;
//! - order: per key, acknowledged offsets in send order; per member and generation, offsets
//!   of a partition read strictly increasing (no rewind);
//! - recovery: when every record acknowledged before the last fault healed had been read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A record's identity: key number and per-key sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id {
    pub(crate) key: u32,
    pub(crate) seq: u64,
}

impl Id {
    pub(crate) fn key_bytes(self) -> String {
        format!("k{}", self.key)
    }

    pub(crate) fn text(self) -> String {
        format!("k{}:{}", self.key, self.seq)
    }

    /// Parses `k<key>:<seq>` anywhere at the end of `s` (after an optional prefix up to the
    /// last space).
    pub(crate) fn parse(s: &str) -> Option<Id> {
        let s = s.rsplit(' ').next()?;
        let (k, seq) = s.strip_prefix('k')?.split_once(':')?;
        Some(Id {
            key: k.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// Orders events of all tasks and processes (one counter per test binary).
static CLOCK: AtomicU64 = AtomicU64::new(1);

pub(crate) fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Acknowledged writes to one topic.
#[derive(Debug, Default)]
pub(crate) struct Acked {
    inner: Mutex<AckedInner>,
}

#[derive(Debug, Default)]
struct AckedInner {
    records: HashMap<(i32, i64), (Id, Instant)>,
    failed: u64,
}

impl Acked {
    pub(crate) fn new() -> Arc<Acked> {
        Arc::default()
    }

    pub(crate) fn ack(&self, partition: i32, offset: i64, id: Id) {
        lock(&self.inner)
            .records
            .insert((partition, offset), (id, Instant::now()));
    }

    pub(crate) fn fail(&self) {
        lock(&self.inner).failed += 1;
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).records.len()
    }

    pub(crate) fn failed(&self) -> u64 {
        lock(&self.inner).failed
    }

    /// Highest acknowledged offset + 1 per partition.
    pub(crate) fn ends(&self) -> BTreeMap<i32, i64> {
        let mut ends = BTreeMap::new();
        for &(p, o) in lock(&self.inner).records.keys() {
            let e = ends.entry(p).or_insert(0);
            *e = (*e).max(o + 1);
        }
        ends
    }

    fn snapshot(&self) -> HashMap<(i32, i64), (Id, Instant)> {
        lock(&self.inner).records.clone()
    }

    /// Acknowledged `(partition, offset)`s.
    pub(crate) fn snapshot_ids(&self) -> Vec<(i32, i64)> {
        let mut v: Vec<(i32, i64)> = lock(&self.inner).records.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Identities acknowledged (a record acknowledged twice counts once).
    pub(crate) fn ids(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = lock(&self.inner).records.values().map(|v| v.0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Per key, identities new to the log must come in send order, partition by partition in
    /// offset order (a retried batch or a re-copied record repeats older ones: those are not
    /// new and are skipped).
    pub(crate) fn order_violations(&self) -> Vec<String> {
        let mut by_offset: Vec<((i32, i64), Id)> = lock(&self.inner)
            .records
            .iter()
            .map(|(k, v)| (*k, v.0))
            .collect();
        by_offset.sort_unstable_by_key(|(k, _)| *k);
        let mut seen = std::collections::HashSet::new();
        let mut max: HashMap<(i32, u32), u64> = HashMap::new();
        let mut out = Vec::new();
        for ((p, o), id) in by_offset {
            if !seen.insert(id) {
                continue;
            }
            match max.get(&(p, id.key)) {
                Some(&m) if id.seq < m => out.push(format!(
                    "partition {p} offset {o}: {} first written after seq {m} of the same key",
                    id.text()
                )),
                _ => {
                    max.insert((p, id.key), id.seq);
                }
            }
        }
        out
    }
}

/// One read (or, for a Worker, one completed handling) of a record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) when: Instant,
    pub(crate) member: u32,
    /// `-1` when the generation is not visible (Worker members).
    pub(crate) generation: i32,
    /// How many times this member had lost its partitions (`on_lost`) before the read: the
    /// client may rejoin with the same generation and read again from the last commit.
    pub(crate) epoch: u32,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) id: Option<Id>,
}

#[derive(Debug, Clone, Copy)]
struct Commit {
    at: u64,
    partition: i32,
    offset: i64,
}

/// What the members of one consumer group read and committed.
#[derive(Debug, Default)]
pub(crate) struct GroupLog {
    inner: Mutex<GroupInner>,
}

#[derive(Debug, Default)]
struct GroupInner {
    reads: Vec<Read>,
    commits: Vec<Commit>,
    /// `(tick, generation)` whenever a member reported a generation.
    generations: Vec<(u64, i32)>,
    /// `(generation, member, partitions)` as the members reported them.
    assignments: Vec<(i32, u32, Vec<i32>)>,
    /// Times each member reported its partitions lost.
    epochs: HashMap<u32, u32>,
}

impl GroupLog {
    pub(crate) fn new() -> Arc<GroupLog> {
        Arc::default()
    }

    pub(crate) fn read(&self, r: Read) {
        lock(&self.inner).reads.push(r);
    }

    pub(crate) fn commit(&self, partition: i32, offset: i64) {
        lock(&self.inner).commits.push(Commit {
            at: tick(),
            partition,
            offset,
        });
    }

    pub(crate) fn assigned(&self, member: u32, generation: i32, partitions: Vec<i32>) {
        let mut g = lock(&self.inner);
        g.generations.push((tick(), generation));
        g.assignments.push((generation, member, partitions));
    }

    /// A member reported `on_lost`: its positions restart from the commits.
    pub(crate) fn lost(&self, member: u32) {
        *lock(&self.inner).epochs.entry(member).or_default() += 1;
    }

    /// How many times `member` lost its partitions so far.
    pub(crate) fn epoch(&self, member: u32) -> u32 {
        lock(&self.inner).epochs.get(&member).copied().unwrap_or(0)
    }

    /// Losses of partitions reported by all members.
    pub(crate) fn losses(&self) -> u32 {
        lock(&self.inner).epochs.values().sum()
    }

    pub(crate) fn reads(&self) -> usize {
        lock(&self.inner).reads.len()
    }

    /// Committed offset per partition (the highest seen).
    pub(crate) fn committed(&self) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for c in &lock(&self.inner).commits {
            let e = out.entry(c.partition).or_insert(0);
            *e = (*e).max(c.offset);
        }
        out
    }

    /// Whether every acknowledged offset was read and the group committed past the end of
    /// every partition (its lag is zero).
    pub(crate) fn caught_up(&self, acked: &Acked) -> bool {
        let ends = acked.ends();
        let committed = self.committed();
        if ends
            .iter()
            .any(|(p, e)| committed.get(p).copied().unwrap_or(0) < *e)
        {
            return false;
        }
        let records = acked.snapshot();
        let g = lock(&self.inner);
        let mut seen = std::collections::HashSet::with_capacity(g.reads.len());
        for r in &g.reads {
            seen.insert((r.partition, r.offset));
        }
        records.keys().all(|k| seen.contains(k))
    }
}

/// The validator's verdict for one group against one topic's acknowledgements.
#[derive(Debug, Default, Clone)]
pub(crate) struct Verdict {
    pub(crate) acked: usize,
    pub(crate) reads: usize,
    pub(crate) lost: usize,
    pub(crate) duplicated: usize,
    /// Offsets read that no acknowledgement names: a batch the producer retried after its
    /// response was lost is in the log twice (gregor's producer has no idempotence).
    pub(crate) unacknowledged: usize,
    pub(crate) outside_window: usize,
    pub(crate) zombie_reads: usize,
    pub(crate) same_generation: usize,
    pub(crate) overlapping: usize,
    pub(crate) order: usize,
    pub(crate) recovery: Option<Duration>,
    /// The longest time from acknowledgement to first read, and its partition.
    pub(crate) slowest: Option<(i32, Duration)>,
    pub(crate) problems: Vec<String>,
}

impl Verdict {
    pub(crate) fn violations(&self) -> usize {
        self.lost + self.outside_window + self.same_generation + self.overlapping + self.order
    }
}

/// Compares what `group` read with what `acked` says was written. `healed`: when the last
/// fault ended (for the recovery time).
pub(crate) fn validate(acked: &Acked, group: &GroupLog, healed: Option<Instant>) -> Verdict {
    let records = acked.snapshot();
    let g = lock(&group.inner);
    let mut v = Verdict {
        acked: records.len(),
        reads: g.reads.len(),
        ..Verdict::default()
    };
    let note = |v: &mut Verdict, s: String| {
        if v.problems.len() < 20 {
            v.problems.push(s);
        }
    };

    // Reads in the order they happened.
    let mut reads = g.reads.clone();
    reads.sort_unstable_by_key(|r| r.start);
    let mut commits = g.commits.clone();
    commits.sort_unstable_by_key(|c| c.at);
    let mut generations = g.generations.clone();
    generations.sort_unstable();

    // Lost, and reads that found another record at an acknowledged offset.
    let mut first: HashMap<(i32, i64), Read> = HashMap::with_capacity(records.len());
    for r in &reads {
        first.entry((r.partition, r.offset)).or_insert(*r);
    }
    let mut lost: Vec<(i32, i64, Id)> = Vec::new();
    for (&(p, o), &(id, _)) in &records {
        match first.get(&(p, o)) {
            None => lost.push((p, o, id)),
            Some(r) if r.id.is_some_and(|got| got != id) => {
                lost.push((p, o, id));
            }
            Some(_) => {}
        }
    }
    lost.sort_unstable();
    v.lost = lost.len();
    v.unacknowledged = first.keys().filter(|k| !records.contains_key(k)).count();
    for (p, o, id) in lost.iter().take(10) {
        note(
            &mut v,
            format!(
                "LOST: {} acknowledged at partition {p} offset {o}",
                id.text()
            ),
        );
    }

    // Duplicates, and where they happened.
    let mut by_offset: HashMap<(i32, i64), Vec<Read>> = HashMap::new();
    for r in &reads {
        by_offset
            .entry((r.partition, r.offset))
            .or_default()
            .push(*r);
    }
    // Per partition: (tick, highest committed so far); generations: (tick, newest so far).
    let mut commit_steps: HashMap<i32, Vec<(u64, i64)>> = HashMap::new();
    for c in &commits {
        let steps = commit_steps.entry(c.partition).or_default();
        let max = steps.last().map_or(c.offset, |s| s.1.max(c.offset));
        steps.push((c.at, max));
    }
    let committed_before = |partition: i32, at: u64| -> i64 {
        let Some(steps) = commit_steps.get(&partition) else {
            return 0;
        };
        let n = steps.partition_point(|s| s.0 < at);
        if n == 0 { 0 } else { steps[n - 1].1 }
    };
    let mut generation_steps: Vec<(u64, i32)> = Vec::with_capacity(generations.len());
    for &(t, generation) in &generations {
        let max = generation_steps
            .last()
            .map_or(generation, |s| s.1.max(generation));
        generation_steps.push((t, max));
    }
    let newest_generation_before = |at: u64| -> i32 {
        let n = generation_steps.partition_point(|s| s.0 < at);
        if n == 0 {
            -1
        } else {
            generation_steps[n - 1].1
        }
    };
    for ((p, o), rs) in &by_offset {
        if rs.len() < 2 {
            continue;
        }
        v.duplicated += rs.len() - 1;
        for (i, r) in rs.iter().enumerate() {
            for other in &rs[..i] {
                if r.generation >= 0 && other.generation == r.generation && other.member != r.member
                {
                    v.same_generation += 1;
                    note(
                        &mut v,
                        format!(
                            "TWO MEMBERS: partition {p} offset {o} read by members {} and {} in generation {}",
                            other.member, r.member, r.generation
                        ),
                    );
                }
                if r.generation < 0 && other.member != r.member && r.start < other.end {
                    v.overlapping += 1;
                    note(
                        &mut v,
                        format!(
                            "TWO MEMBERS AT ONCE: partition {p} offset {o} handled by members {} and {} in overlapping spans",
                            other.member, r.member
                        ),
                    );
                }
            }
            if i == 0 {
                continue;
            }
            let committed = committed_before(*p, r.start);
            if committed > *o {
                if r.generation >= 0 && newest_generation_before(r.start) > r.generation {
                    v.zombie_reads += 1;
                } else {
                    v.outside_window += 1;
                    note(
                        &mut v,
                        format!(
                            "OUTSIDE WINDOW: partition {p} offset {o} read again by member {} (generation {}) after the group committed {committed}",
                            r.member, r.generation
                        ),
                    );
                }
            }
        }
    }

    // Order: acknowledged per key in send order; reads per member, generation and partition
    // never rewind.
    let log_order = acked.order_violations();
    v.order += log_order.len();
    for s in log_order.into_iter().take(5) {
        note(&mut v, format!("ORDER (log): {s}"));
    }
    let mut last: HashMap<(u32, i32, u32, i32), i64> = HashMap::new();
    for r in &reads {
        if r.generation < 0 {
            continue;
        }
        let k = (r.member, r.generation, r.epoch, r.partition);
        if let Some(&prev) = last.get(&k)
            && r.offset <= prev
        {
            v.order += 1;
            note(
                &mut v,
                format!(
                    "ORDER (read): member {} generation {} read partition {} offset {} after {prev}",
                    r.member, r.generation, r.partition, r.offset
                ),
            );
        }
        last.insert(k, r.offset);
    }
    // Assignments as the members reported them: one owner per partition and generation.
    let mut assignment_overlaps = 0;
    let mut owners: HashMap<(i32, i32), u32> = HashMap::new();
    for (generation, member, parts) in &g.assignments {
        for p in parts {
            if let Some(m) = owners.insert((*generation, *p), *member)
                && m != *member
            {
                assignment_overlaps += 1;
            }
        }
    }
    if assignment_overlaps > 0 {
        v.same_generation += assignment_overlaps;
        note(
            &mut v,
            format!(
                "TWO MEMBERS: {assignment_overlaps} partitions assigned to two members in one generation"
            ),
        );
    }

    for (k, (_, at)) in &records {
        if let Some(r) = first.get(k) {
            let d = r.when.saturating_duration_since(*at);
            if v.slowest.is_none_or(|(_, s)| d > s) {
                v.slowest = Some((k.0, d));
            }
        }
    }

    // Recovery: every record acknowledged before the fault healed, first read.
    if let Some(healed) = healed {
        let mut latest = healed;
        let mut complete = true;
        for (k, (_, at)) in &records {
            if *at > healed {
                continue;
            }
            match first.get(k) {
                Some(r) => latest = latest.max(r.when),
                None => complete = false,
            }
        }
        if complete {
            v.recovery = Some(latest.saturating_duration_since(healed));
        }
    }
    v
}

/// Duplicates among identities (for a topic written by several copies of a record).
pub(crate) fn identity_duplicates(acked: &Acked) -> usize {
    let records = acked.snapshot();
    let mut count: HashMap<Id, usize> = HashMap::new();
    for (id, _) in records.values() {
        *count.entry(*id).or_default() += 1;
    }
    count.values().map(|c| c - 1).sum()
}
