//! What a worker did: counters shared by its partition tasks, and the final summary.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use gregor_handler::Outcome;

/// Live counters (atomics shared by the partition tasks).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) redeliveries: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn outcome(&self, outcome: Outcome) {
        let c = match outcome {
            Outcome::Processed => &self.processed,
            Outcome::Filtered => &self.filtered,
            Outcome::Skipped => &self.skipped,
            Outcome::DeadLettered => &self.dead_lettered,
            Outcome::Duplicate => &self.duplicates,
            _ => &self.processed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// What one partition task did since it last added to the shared [`Counters`]: the task adds
/// once per batch of records, so tasks on other threads do not contend for the counters'
/// cache line on every record.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    records: u64,
    outcomes: [u64; 5],
    retries: u64,
    redeliveries: u64,
}

impl Tally {
    /// One record done with `outcome`.
    pub(crate) fn done(&mut self, outcome: Outcome) {
        self.records += 1;
        let i = match outcome {
            Outcome::Filtered => 1,
            Outcome::Skipped => 2,
            Outcome::DeadLettered => 3,
            Outcome::Duplicate => 4,
            _ => 0,
        };
        self.outcomes[i] += 1;
    }

    /// Retries the retry layer made for one delivery.
    pub(crate) fn retries(&mut self, n: u32) {
        self.retries += u64::from(n);
    }

    /// One more delivery of a record after the stack failed.
    pub(crate) fn redelivery(&mut self) {
        self.redeliveries += 1;
    }

    /// Adds everything to `counters` and starts again from zero.
    pub(crate) fn flush(&mut self, counters: &Counters) {
        let t = std::mem::take(self);
        Counters::add(&counters.records, t.records);
        let [processed, filtered, skipped, dead_lettered, duplicates] = t.outcomes;
        Counters::add(&counters.processed, processed);
        Counters::add(&counters.filtered, filtered);
        Counters::add(&counters.skipped, skipped);
        Counters::add(&counters.dead_lettered, dead_lettered);
        Counters::add(&counters.duplicates, duplicates);
        Counters::add(&counters.retries, t.retries);
        Counters::add(&counters.redeliveries, t.redeliveries);
    }
}

/// A worker's totals: what the classic apps print on shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Records handed to the handler stack and finished (any outcome).
    pub records: u64,
    /// Bytes of record batches fetched.
    pub bytes: u64,
    /// Handled successfully.
    pub processed: u64,
    /// Let by by a filter.
    pub filtered: u64,
    /// Skipped by the router (no route, fallback skip).
    pub skipped: u64,
    /// Published to a dead-letter topic.
    pub dead_lettered: u64,
    /// Not handled again (dedupe).
    pub duplicates: u64,
    /// Retries made by the retry layer.
    pub retries: u64,
    /// Deliveries of the same record again after the stack failed or deferred it.
    pub redeliveries: u64,
    /// Records whose value could not be decoded (they go to the dead-letter layer).
    pub decode_errors: u64,
    /// Sum of the lag of the partitions assigned at the end.
    pub lag: i64,
    /// Offset commits made.
    pub commits: u64,
    /// Rebalances this member took part in.
    pub rebalances: u64,
}

impl WorkerStats {
    pub(crate) fn from_counters(c: &Counters) -> WorkerStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            records: get(&c.records),
            processed: get(&c.processed),
            filtered: get(&c.filtered),
            skipped: get(&c.skipped),
            dead_lettered: get(&c.dead_lettered),
            duplicates: get(&c.duplicates),
            retries: get(&c.retries),
            redeliveries: get(&c.redeliveries),
            decode_errors: get(&c.decode_errors),
            ..WorkerStats::default()
        }
    }
}

impl fmt::Display for WorkerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records={} bytes={} processed={} filtered={} skipped={} dead_lettered={} duplicates={} \
             retries={} redeliveries={} decode_errors={} lag={} commits={} rebalances={}",
            self.records,
            self.bytes,
            self.processed,
            self.filtered,
            self.skipped,
            self.dead_lettered,
            self.duplicates,
            self.retries,
            self.redeliveries,
            self.decode_errors,
            self.lag,
            self.commits,
            self.rebalances
        )
    }
}
