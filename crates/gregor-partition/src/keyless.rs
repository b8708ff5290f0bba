//! Where records without a key go: sticky (KIP-480), round-robin, random, or hashed like an
//! empty key. Lock-free: one or two atomic operations per record.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// How a hashing partitioner places records that have no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Keyless {
    /// Stick to one partition until a batch for it is sealed, then move to another (KIP-480;
    /// the Java client's choice for null keys).
    Sticky,
    /// Take partitions in turn (kafka-go's `Hash` balancer).
    RoundRobin,
    /// A random partition per record (librdkafka's `*_random` partitioners, sarama).
    Random,
    /// Hash the missing key as if it were empty, so every keyless record lands on one partition
    /// (librdkafka's `consistent`, `murmur2` and `fnv1a`).
    Hash,
}

/// No sticky partition chosen yet.
const UNSET: i32 = -1;

/// Per-topic state of a keyless policy.
#[derive(Debug)]
pub(crate) struct KeylessState {
    policy: Keyless,
    /// The sticky partition: `>= 0` chosen; `UNSET`; or `-(p + 2)`: the batch for `p` was sealed,
    /// choose another than `p` next time.
    sticky: AtomicI32,
    turn: AtomicU32,
    rng: Rng,
}

impl KeylessState {
    pub(crate) fn new(policy: Keyless) -> KeylessState {
        KeylessState {
            policy,
            sticky: AtomicI32::new(UNSET),
            turn: AtomicU32::new(0),
            rng: Rng::new(),
        }
    }

    /// A partition in `0..n` (`n >= 1`, checked by the caller) for a keyless record; `None`
    /// for [`Keyless::Hash`], where the caller hashes an empty key.
    pub(crate) fn pick(&self, n: i32) -> Option<i32> {
        match self.policy {
            Keyless::Sticky => Some(self.sticky(n)),
            Keyless::RoundRobin => {
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                Some(index(u64::from(turn), n))
            }
            Keyless::Random => Some(index(self.rng.next(), n)),
            Keyless::Hash => None,
        }
    }

    fn sticky(&self, n: i32) -> i32 {
        let mut current = self.sticky.load(Ordering::Acquire);
        loop {
            if (0..n).contains(&current) {
                return current;
            }
            // Unset, sealed, or out of range after the topic shrank in our view: choose anew,
            // avoiding the partition whose batch was just sealed when there is another.
            let avoid = if current <= -2 { -(current + 2) } else { UNSET };
            let next = self.random_except(avoid, n);
            match self
                .sticky
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// A random partition in `0..n`, not `avoid` when `n > 1` and `avoid` is in range.
    fn random_except(&self, avoid: i32, n: i32) -> i32 {
        if n > 1 && (0..n).contains(&avoid) {
            (avoid + 1 + index(self.rng.next(), n - 1)) % n
        } else {
            index(self.rng.next(), n)
        }
    }

    /// A batch for `partition` was sealed: a sticky policy moves on from it.
    pub(crate) fn batch_sealed(&self, partition: i32) {
        if self.policy == Keyless::Sticky && partition >= 0 {
            // Only the current sticky partition moves; a stale notice is ignored.
            let _ = self.sticky.compare_exchange(
                partition,
                -(partition + 2),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// `x mod n` for `n >= 1`, as a partition.
fn index(x: u64, n: i32) -> i32 {
    let n = u64::from(n.unsigned_abs().max(1));
    // The remainder is below n <= i32::MAX.
    i32::try_from(x % n).unwrap_or(0)
}

/// A lock-free splitmix64 generator seeded from the process's random hasher keys: good enough
/// to spread keyless records, with no dependency and no lock.
#[derive(Debug)]
struct Rng(AtomicU64);

impl Rng {
    fn new() -> Rng {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        Rng(AtomicU64::new(seed))
    }

    fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_stays_until_its_batch_is_sealed_then_moves() {
        let s = KeylessState::new(Keyless::Sticky);
        let first = s.pick(6).unwrap();
        for _ in 0..100 {
            assert_eq!(s.pick(6), Some(first));
        }
        // A sealed batch of another partition changes nothing.
        s.batch_sealed((first + 1) % 6);
        assert_eq!(s.pick(6), Some(first));
        s.batch_sealed(first);
        let second = s.pick(6).unwrap();
        assert_ne!(second, first);
        assert_eq!(s.pick(6), Some(second));
    }

    #[test]
    fn sticky_visits_every_partition_over_many_batches() {
        let s = KeylessState::new(Keyless::Sticky);
        let mut seen = [0_u32; 5];
        for _ in 0..500 {
            let p = s.pick(5).unwrap();
            seen[usize::try_from(p).unwrap()] += 1;
            s.batch_sealed(p);
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
    }

    #[test]
    fn sticky_on_one_partition_stays_there() {
        let s = KeylessState::new(Keyless::Sticky);
        assert_eq!(s.pick(1), Some(0));
        s.batch_sealed(0);
        assert_eq!(s.pick(1), Some(0));
    }

    #[test]
    fn sticky_rechooses_when_the_count_shrinks() {
        let s = KeylessState::new(Keyless::Sticky);
        let mut p = s.pick(100).unwrap();
        while p < 3 {
            s.batch_sealed(p);
            p = s.pick(100).unwrap();
        }
        assert!(s.pick(3).unwrap() < 3);
    }

    #[test]
    fn round_robin_takes_turns() {
        let s = KeylessState::new(Keyless::RoundRobin);
        let got: Vec<i32> = (0..7).map(|_| s.pick(3).unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn random_spreads() {
        let s = KeylessState::new(Keyless::Random);
        let mut seen = [0_u32; 4];
        for _ in 0..4000 {
            seen[usize::try_from(s.pick(4).unwrap()).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        assert_eq!(KeylessState::new(Keyless::Hash).pick(4), None);
    }
}
