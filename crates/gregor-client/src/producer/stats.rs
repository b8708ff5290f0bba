//! Producer statistics, like kafka-go's `WriterStats`: counters kept in atomics as records
//! flow, read as one [`ProducerStats`] snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets: bucket `i` holds latencies below `2^i` microseconds (the last one the rest),
/// so 1 µs to 2^31 µs (~36 minutes) in 32 buckets.
const BUCKETS: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) headers_merged: AtomicU64,
    pub(crate) latency: Histogram,
}

#[derive(Debug, Default)]
pub(crate) struct PartitionCounters {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl PartitionCounters {
    pub(crate) fn snapshot(&self) -> PartitionStats {
        PartitionStats {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records `n` observations of `latency`.
    pub(crate) fn record(&self, latency: Duration, n: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = usize::try_from(u64::BITS - micros.leading_zeros())
            .unwrap_or(BUCKETS - 1)
            .min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(n, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(micros.saturating_mul(n), Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: Duration::from_micros(self.sum_micros.load(Ordering::Relaxed)),
        }
    }
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        partitions: BTreeMap<(String, i32), PartitionStats>,
        queued_records: u64,
        queued_bytes: u64,
    ) -> ProducerStats {
        ProducerStats {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            headers_merged: self.headers_merged.load(Ordering::Relaxed),
            queued_records,
            queued_bytes,
            partitions,
            latency: self.latency.snapshot(),
        }
    }
}

/// A producer's statistics since it was connected (kafka-go's `WriterStats`, cumulative).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Records acknowledged by the broker.
    pub records: u64,
    /// Bytes of key, value and headers of acknowledged records (before compression).
    pub bytes: u64,
    /// Produce requests that succeeded (one batch each).
    pub batches: u64,
    /// Records that failed for good (their error went to the caller or the delivery callback).
    pub errors: u64,
    /// Batches sent again after a retriable error (rskafka's own resends after a broken
    /// connection or a leader move are not counted).
    pub retries: u64,
    /// Headers dropped because a record had two with the same key (rskafka keeps the last).
    pub headers_merged: u64,
    /// Records accepted and not yet delivered or failed.
    pub queued_records: u64,
    /// Bytes (estimated encoded size) of those records.
    pub queued_bytes: u64,
    /// Per topic and partition.
    pub partitions: BTreeMap<(String, i32), PartitionStats>,
    /// Produce latency: from the send call to the broker's acknowledgement, per record.
    pub latency: LatencyHistogram,
}

/// Counters of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Records acknowledged.
    pub records: u64,
    /// Bytes of key, value and headers acknowledged.
    pub bytes: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Records that failed.
    pub errors: u64,
}

/// A latency histogram with power-of-two buckets in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    sum: Duration,
}

impl LatencyHistogram {
    /// Observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean latency; zero without observations.
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.count()) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.sum / n,
            Err(_) => Duration::from_secs_f64(self.sum.as_secs_f64() / self.count() as f64),
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0.5: median, 0.99: p99): the true
    /// value is at most this and more than half of it. Zero without observations.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(1_u64 << i.min(62));
            }
        }
        Duration::from_micros(1_u64 << (BUCKETS - 1))
    }

    /// `(upper bound, count)` per non-empty bucket, in increasing order.
    pub fn buckets(&self) -> Vec<(Duration, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| (Duration::from_micros(1_u64 << i.min(62)), c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_powers_of_two() {
        let h = Histogram::default();
        h.record(Duration::from_micros(3), 10); // below 4 µs
        h.record(Duration::from_millis(2), 80); // 2000 µs: below 2048 µs
        h.record(Duration::from_millis(100), 10); // below 131072 µs
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        assert_eq!(s.quantile(0.05), Duration::from_micros(4));
        assert_eq!(s.quantile(0.5), Duration::from_micros(2048));
        assert_eq!(s.quantile(0.99), Duration::from_micros(131_072));
        assert_eq!(s.buckets().len(), 3);
        assert_eq!(
            s.mean(),
            Duration::from_micros(3 * 10 + 2000 * 80 + 100_000 * 10) / 100
        );
        let empty = Histogram::default().snapshot();
        assert_eq!(empty.quantile(0.5), Duration::ZERO);
        assert_eq!(empty.mean(), Duration::ZERO);
    }

    #[test]
    fn zero_and_huge_latencies_stay_in_range() {
        let h = Histogram::default();
        h.record(Duration::ZERO, 1);
        h.record(Duration::from_secs(1_000_000), 1);
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert_eq!(s.quantile(0.0), Duration::from_micros(1));
        assert_eq!(s.quantile(1.0), Duration::from_micros(1 << 31));
    }
}
