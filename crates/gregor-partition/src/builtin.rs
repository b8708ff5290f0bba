//! The built-in partitioners.

use crate::error::{Error, Result, check_count};
use crate::hash;
use crate::keyless::{Keyless, KeylessState};
use crate::{Partitioner, RecordView};

/// `toPositive(murmur2(key)) % partitions`: the Java client's placement of keyed records.
fn murmur2_index(key: &[u8], partitions: i32) -> i32 {
    hash::to_positive(hash::murmur2(key)) % partitions
}

/// The Java client's placement for keyed records: `toPositive(murmur2(key)) % partitions`
/// (a mask, not `abs`; seed `0x9747b28c`), byte for byte. Keyless records follow a
/// [`Keyless`] policy: sticky by default, as in the Java client since KIP-480.
///
/// Same as librdkafka's `murmur2` with [`Keyless::Hash`] and `murmur2_random` with
/// [`Keyless::Random`]. An empty key is a key (it is hashed), as in Java and librdkafka.
///
/// ```
/// use gregor_partition::{Murmur2, Partitioner, RecordView};
///
/// let p = Murmur2::new();
/// // The Java client puts the key "21" on partition 0 of 12 ...
/// assert_eq!(p.partition(&RecordView::new(Some(b"21")), 12)?, 0);
/// // ... and "foobar" on partition 6.
/// assert_eq!(Murmur2::place(b"foobar", 12)?, 6);
/// # Ok::<(), gregor_partition::Error>(())
/// ```
#[derive(Debug)]
pub struct Murmur2 {
    keyless: KeylessState,
}

impl Murmur2 {
    /// Murmur2 for keys, sticky for keyless records (the Java client's default).
    pub fn new() -> Murmur2 {
        Murmur2::with_keyless(Keyless::Sticky)
    }

    /// Murmur2 for keys, `keyless` for records without one.
    pub fn with_keyless(keyless: Keyless) -> Murmur2 {
        Murmur2 {
            keyless: KeylessState::new(keyless),
        }
    }

    /// Where the Java client puts `key` on a topic of `partitions` partitions.
    pub fn place(key: &[u8], partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        Ok(murmur2_index(key, partitions))
    }
}

impl Default for Murmur2 {
    fn default() -> Murmur2 {
        Murmur2::new()
    }
}

impl Partitioner for Murmur2 {
    fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        match record.key() {
            Some(key) => Ok(murmur2_index(key, partitions)),
            None => Ok(self
                .keyless
                .pick(partitions)
                .unwrap_or_else(|| murmur2_index(&[], partitions))),
        }
    }

    fn batch_sealed(&self, partition: i32) {
        self.keyless.batch_sealed(partition);
    }
}

/// How an FNV-1a hash becomes a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fnv1aVariant {
    /// `abs(int32(h) % n)`: sarama's `NewHashPartitioner`, kafka-go's `Hash` balancer and
    /// librdkafka's `fnv1a` (all three agree, including for `h = 0x80000000`).
    Sarama,
    /// `h % n` on the unsigned hash: Go's plain `fnv.New32a().Sum32() % uint32(n)` (sarama's
    /// `WithHashUnsigned` option).
    Unsigned,
}

/// FNV-1a (32-bit) placement, for topics that Go producers (sarama, kafka-go) or librdkafka's
/// `fnv1a` partitioner filled before.
///
/// kafka-go's `Hash` balancer sends keyless records round-robin; sarama sends them to a random
/// partition; librdkafka's `fnv1a` hashes them like an empty key. Pick the [`Keyless`] policy
/// to match.
///
/// ```
/// use gregor_partition::{Fnv1a, Fnv1aVariant, Keyless, Partitioner, RecordView};
///
/// let sarama = Fnv1a::new(Fnv1aVariant::Sarama, Keyless::Random);
/// let unsigned = Fnv1a::new(Fnv1aVariant::Unsigned, Keyless::RoundRobin);
/// // FNV-1a("kafka") = 0x0d33c4e1 has its top bit clear, so both variants agree.
/// let key = RecordView::new(Some(b"kafka"));
/// assert_eq!(sarama.partition(&key, 7)?, 0x0d33c4e1 % 7);
/// assert_eq!(unsigned.partition(&key, 7)?, 0x0d33c4e1 % 7);
/// # Ok::<(), gregor_partition::Error>(())
/// ```
#[derive(Debug)]
pub struct Fnv1a {
    variant: Fnv1aVariant,
    keyless: KeylessState,
}

impl Fnv1a {
    /// FNV-1a with `variant` arithmetic; `keyless` for records without a key.
    pub fn new(variant: Fnv1aVariant, keyless: Keyless) -> Fnv1a {
        Fnv1a {
            variant,
            keyless: KeylessState::new(keyless),
        }
    }

    /// kafka-go's `Hash` balancer: the sarama arithmetic, keyless records round-robin.
    pub fn kafka_go() -> Fnv1a {
        Fnv1a::new(Fnv1aVariant::Sarama, Keyless::RoundRobin)
    }

    /// Where `variant` puts `key` on a topic of `partitions` partitions.
    pub fn place(variant: Fnv1aVariant, key: &[u8], partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        Ok(fnv1a_index(variant, key, partitions))
    }
}

fn fnv1a_index(variant: Fnv1aVariant, key: &[u8], partitions: i32) -> i32 {
    let h = hash::fnv1a(key);
    match variant {
        // Go's `%` truncates like Rust's; `partitions >= 1`, so the remainder is in
        // (-partitions, partitions) and its absolute value cannot overflow.
        Fnv1aVariant::Sarama => ((h as i32) % partitions).abs(),
        Fnv1aVariant::Unsigned => (h % partitions.unsigned_abs()) as i32,
    }
}

impl Partitioner for Fnv1a {
    fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        match record.key() {
            Some(key) => Ok(fnv1a_index(self.variant, key, partitions)),
            None => Ok(self
                .keyless
                .pick(partitions)
                .unwrap_or_else(|| fnv1a_index(self.variant, &[], partitions))),
        }
    }

    fn batch_sealed(&self, partition: i32) {
        self.keyless.batch_sealed(partition);
    }
}

/// librdkafka's `consistent` / `consistent_random` partitioners: `crc32(key) % n` on unsigned
/// values (zlib's CRC-32). librdkafka does not tell an empty key from a missing one, and neither
/// does this: both follow the [`Keyless`] policy, and [`Keyless::Hash`] puts them where an
/// empty key hashes (CRC 0: partition 0).
///
/// ```
/// use gregor_partition::{Crc32, Partitioner, RecordView};
///
/// let p = Crc32::consistent();
/// // crc32("123456789") = 0xcbf43926
/// assert_eq!(p.partition(&RecordView::new(Some(b"123456789")), 10)?, (0xcbf43926_u32 % 10) as i32);
/// assert_eq!(p.partition(&RecordView::new(None), 10)?, 0);
/// # Ok::<(), gregor_partition::Error>(())
/// ```
#[derive(Debug)]
pub struct Crc32 {
    keyless: KeylessState,
}

impl Crc32 {
    /// CRC-32 for keys, `keyless` for records with no key or an empty one.
    pub fn new(keyless: Keyless) -> Crc32 {
        Crc32 {
            keyless: KeylessState::new(keyless),
        }
    }

    /// librdkafka's `consistent`: every record hashed, keyless ones to partition 0.
    pub fn consistent() -> Crc32 {
        Crc32::new(Keyless::Hash)
    }

    /// librdkafka's `consistent_random` (its default): keyless records to a random partition.
    pub fn consistent_random() -> Crc32 {
        Crc32::new(Keyless::Random)
    }

    /// Where librdkafka puts `key` on a topic of `partitions` partitions.
    pub fn place(key: &[u8], partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        Ok(crc32_index(key, partitions))
    }
}

fn crc32_index(key: &[u8], partitions: i32) -> i32 {
    (hash::crc32(key) % partitions.unsigned_abs()) as i32
}

impl Partitioner for Crc32 {
    fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        match record.key().filter(|k| !k.is_empty()) {
            Some(key) => Ok(crc32_index(key, partitions)),
            None => Ok(self
                .keyless
                .pick(partitions)
                .unwrap_or_else(|| crc32_index(&[], partitions))),
        }
    }

    fn batch_sealed(&self, partition: i32) {
        self.keyless.batch_sealed(partition);
    }
}

macro_rules! keyless_partitioner {
    ($(#[$doc:meta])* $name:ident, $policy:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            state: KeylessState,
        }

        impl $name {
            /// A new instance (one per topic: the state is the topic's).
            pub fn new() -> $name {
                $name {
                    state: KeylessState::new($policy),
                }
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::new()
            }
        }

        impl Partitioner for $name {
            fn partition(&self, _record: &RecordView<'_>, partitions: i32) -> Result<i32> {
                check_count(partitions)?;
                Ok(self.state.pick(partitions).unwrap_or(0))
            }

            fn batch_sealed(&self, partition: i32) {
                self.state.batch_sealed(partition);
            }
        }
    };
}

keyless_partitioner!(
    /// Sticky placement for every record, keyed or not (KIP-480): stay on one partition until
    /// the producer seals a batch for it ([`Partitioner::batch_sealed`]), then move to another.
    /// Fewer, fuller batches than round-robin; no per-key order across partitions.
    ///
    /// ```
    /// use gregor_partition::{Partitioner, RecordView, Sticky};
    ///
    /// let p = Sticky::new();
    /// let first = p.partition(&RecordView::new(None), 6)?;
    /// assert_eq!(p.partition(&RecordView::new(Some(b"k")), 6)?, first);
    /// p.batch_sealed(first);
    /// assert_ne!(p.partition(&RecordView::new(None), 6)?, first);
    /// # Ok::<(), gregor_partition::Error>(())
    /// ```
    Sticky,
    Keyless::Sticky
);

keyless_partitioner!(
    /// Partitions in turn, ignoring keys (Java's `RoundRobinPartitioner`, kafka-go's
    /// `RoundRobin`).
    ///
    /// ```
    /// use gregor_partition::{Partitioner, RecordView, RoundRobin};
    ///
    /// let p = RoundRobin::new();
    /// let turns: Vec<i32> = (0..4).map(|_| p.partition(&RecordView::new(None), 3).unwrap()).collect();
    /// assert_eq!(turns, [0, 1, 2, 0]);
    /// ```
    RoundRobin,
    Keyless::RoundRobin
);

keyless_partitioner!(
    /// A random partition for every record, ignoring keys (librdkafka's `random`).
    Random,
    Keyless::Random
);

/// Records whose `priority` header is `high` go to one reserved partition; every other record
/// is placed over the remaining partitions (murmur2 for keys, sticky without), so urgent records
/// never queue behind bulk ones.
///
/// A topic needs at least two partitions: with one, [`Partitioner::partition`] returns
/// [`Error::TooFewPartitions`]; a reserved partition beyond the topic is
/// [`Error::NoSuchPartition`].
///
/// ```
/// use gregor_partition::{Error, Partitioner, Priority, RecordView};
///
/// let p = Priority::new(0);
/// let urgent = [("priority", "high")];
/// let r = RecordView::new(Some(b"user-7")).with_headers(&urgent);
/// assert_eq!(p.partition(&r, 6)?, 0);
/// for i in 0..100 {
///     let key = format!("user-{i}");
///     assert_ne!(p.partition(&RecordView::new(Some(key.as_bytes())), 6)?, 0);
/// }
/// assert!(matches!(p.partition(&r, 1), Err(Error::TooFewPartitions { .. })));
/// # Ok::<(), gregor_partition::Error>(())
/// ```
#[derive(Debug)]
pub struct Priority {
    reserved: i32,
    header: String,
    value: String,
    keyless: KeylessState,
}

impl Priority {
    /// Reserves partition `reserved` for records with header `priority: high` (value compared
    /// ignoring ASCII case).
    pub fn new(reserved: i32) -> Priority {
        Priority::with_header(reserved, "priority", "high")
    }

    /// Reserves `reserved` for records whose header `name` equals `value` (ASCII case ignored).
    pub fn with_header(
        reserved: i32,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Priority {
        Priority {
            reserved,
            header: name.into(),
            value: value.into(),
            keyless: KeylessState::new(Keyless::Sticky),
        }
    }

    /// The reserved partition.
    pub fn reserved(&self) -> i32 {
        self.reserved
    }

    fn check(&self, partitions: i32) -> Result<()> {
        check_count(partitions)?;
        if partitions < 2 {
            return Err(Error::TooFewPartitions {
                partitioner: "priority",
                partitions,
                needed: 2,
                hint: "one partition is reserved for high-priority records and the others take the rest; add partitions or use another partitioner",
            });
        }
        if !(0..partitions).contains(&self.reserved) {
            return Err(Error::NoSuchPartition {
                partition: self.reserved,
                partitions,
            });
        }
        Ok(())
    }

    /// Rest index (`0..partitions - 1`) to partition, stepping over the reserved one.
    fn outer(&self, inner: i32) -> i32 {
        if inner >= self.reserved {
            inner + 1
        } else {
            inner
        }
    }
}

impl Partitioner for Priority {
    fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32> {
        self.check(partitions)?;
        let urgent = record
            .header(&self.header)
            .is_some_and(|v| v.eq_ignore_ascii_case(self.value.as_bytes()));
        if urgent {
            return Ok(self.reserved);
        }
        let rest = partitions - 1;
        let inner = match record.key() {
            Some(key) => murmur2_index(key, rest),
            None => self.keyless.pick(rest).unwrap_or(0),
        };
        Ok(self.outer(inner))
    }

    fn batch_sealed(&self, partition: i32) {
        if partition == self.reserved || partition < 0 {
            return;
        }
        let inner = if partition > self.reserved {
            partition - 1
        } else {
            partition
        };
        self.keyless.batch_sealed(inner);
    }
}

/// The caller names the partition of every record. A producer configured with `Manual` sends
/// records that carry a partition there and refuses the others with
/// [`Error::PartitionRequired`], rather than guessing.
///
/// ```
/// use gregor_partition::{Error, Manual, Partitioner, RecordView};
///
/// assert_eq!(Manual.partition(&RecordView::new(Some(b"k")), 3), Err(Error::PartitionRequired));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Manual;

impl Partitioner for Manual {
    fn partition(&self, _record: &RecordView<'_>, partitions: i32) -> Result<i32> {
        check_count(partitions)?;
        Err(Error::PartitionRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_places_like_the_java_client() {
        // toPositive(murmur2("21")) = 1173551340, toPositive(murmur2("foobar")) = 1357151166.
        assert_eq!(Murmur2::place(b"21", 12).unwrap(), 1_173_551_340 % 12);
        assert_eq!(Murmur2::place(b"foobar", 12).unwrap(), 1_357_151_166 % 12);
        // A key whose hash is negative: masked, not negated (abs would give another partition).
        let h = hash::murmur2(b"a-little-bit-longer-string");
        assert!(h < 0);
        assert_eq!(
            Murmur2::place(b"a-little-bit-longer-string", 7).unwrap(),
            (h & 0x7fff_ffff) % 7
        );
        assert_ne!((h & 0x7fff_ffff) % 7, h.unsigned_abs() as i32 % 7);
    }

    #[test]
    fn empty_keys_are_keys_for_murmur2_but_not_for_crc32() {
        let m = Murmur2::with_keyless(Keyless::RoundRobin);
        let empty = m.partition(&RecordView::new(Some(b"")), 10).unwrap();
        assert_eq!(empty, (0x106e_08d9 & 0x7fff_ffff) % 10);
        assert_eq!(m.partition(&RecordView::new(Some(b"")), 10).unwrap(), empty);
        let c = Crc32::new(Keyless::RoundRobin);
        let got: Vec<i32> = (0..3)
            .map(|_| c.partition(&RecordView::new(Some(b"")), 10).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2]);
        // librdkafka's murmur2 (consistent) hashes a NULL key like an empty one.
        let consistent = Murmur2::with_keyless(Keyless::Hash);
        assert_eq!(
            consistent.partition(&RecordView::new(None), 10).unwrap(),
            empty
        );
    }

    #[test]
    fn fnv1a_variants_differ_only_on_negative_hashes() {
        // FNV-1a("") = 0x811c9dc5: negative as int32.
        let h = hash::fnv1a(b"");
        let sarama = Fnv1a::place(Fnv1aVariant::Sarama, b"", 12).unwrap();
        let unsigned = Fnv1a::place(Fnv1aVariant::Unsigned, b"", 12).unwrap();
        assert_eq!(sarama, ((h as i32) % 12).abs());
        assert_eq!(sarama, 0x7ee3_623b % 12);
        assert_eq!(unsigned, (h % 12) as i32);
        assert_ne!(sarama, unsigned);
    }

    #[test]
    fn fnv1a_sarama_matches_abs_of_hash_then_modulo() {
        // librdkafka takes abs of the hash first, then the modulo; sarama and kafka-go take the
        // modulo of the signed hash, then abs. They agree on every key.
        for i in 0..10_000 {
            let key = format!("key-{i}");
            let h = hash::fnv1a(key.as_bytes()) as i32;
            for n in [1, 2, 3, 7, 12, 100] {
                assert_eq!(
                    Fnv1a::place(Fnv1aVariant::Sarama, key.as_bytes(), n).unwrap(),
                    (h.unsigned_abs() % n as u32) as i32,
                );
            }
        }
    }

    #[test]
    fn kafka_go_hash_sends_keyless_records_round_robin() {
        let p = Fnv1a::kafka_go();
        let got: Vec<i32> = (0..4)
            .map(|_| p.partition(&RecordView::new(None), 3).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0]);
    }

    #[test]
    fn priority_reserves_one_partition() {
        let p = Priority::new(3);
        let high = [("priority", "HIGH")];
        let low = [("priority", "low")];
        let mut used = [0_u32; 6];
        for i in 0..600 {
            let key = format!("user-{i}");
            let r = RecordView::new(Some(key.as_bytes())).with_headers(&low);
            let got = p.partition(&r, 6).unwrap();
            assert_ne!(got, 3);
            used[usize::try_from(got).unwrap()] += 1;
            let r = RecordView::new(Some(key.as_bytes())).with_headers(&high);
            assert_eq!(p.partition(&r, 6).unwrap(), 3);
        }
        assert!(
            used.iter().enumerate().all(|(i, &c)| (i == 3) == (c == 0)),
            "{used:?}"
        );
        // Keyed records are murmur2 over the 5 others, with the reserved index skipped.
        let key = b"user-42";
        let inner = murmur2_index(key, 5);
        let want = if inner >= 3 { inner + 1 } else { inner };
        assert_eq!(p.partition(&RecordView::new(Some(key)), 6).unwrap(), want);
    }

    #[test]
    fn priority_keyless_records_stick_outside_the_reserved_partition() {
        let p = Priority::new(0);
        for _ in 0..200 {
            let got = p.partition(&RecordView::new(None), 4).unwrap();
            assert_ne!(got, 0);
            assert_eq!(p.partition(&RecordView::new(None), 4).unwrap(), got);
            p.batch_sealed(got);
        }
        // Sealing the reserved partition moves nothing.
        let now = p.partition(&RecordView::new(None), 4).unwrap();
        p.batch_sealed(0);
        assert_eq!(p.partition(&RecordView::new(None), 4).unwrap(), now);
    }

    #[test]
    fn priority_configuration_errors_are_typed() {
        let r = RecordView::new(Some(b"k"));
        assert_eq!(
            Priority::new(0).partition(&r, 1).unwrap_err(),
            Error::TooFewPartitions {
                partitioner: "priority",
                partitions: 1,
                needed: 2,
                hint: "one partition is reserved for high-priority records and the others take the rest; add partitions or use another partitioner",
            }
        );
        assert_eq!(
            Priority::new(5).partition(&r, 5).unwrap_err(),
            Error::NoSuchPartition {
                partition: 5,
                partitions: 5
            }
        );
        assert_eq!(
            Priority::new(0).partition(&r, 0).unwrap_err(),
            Error::NoPartitions { partitions: 0 }
        );
        let e = Priority::new(0).partition(&r, 1).unwrap_err().to_string();
        assert!(e.contains("at least 2"), "{e}");
    }

    #[test]
    fn zero_or_negative_counts_are_errors_for_all() {
        let r = RecordView::new(Some(b"k"));
        let all: Vec<Box<dyn Partitioner>> = vec![
            Box::new(Murmur2::new()),
            Box::new(Fnv1a::kafka_go()),
            Box::new(Crc32::consistent_random()),
            Box::new(Sticky::new()),
            Box::new(RoundRobin::new()),
            Box::new(Random::new()),
            Box::new(Priority::new(0)),
            Box::new(Manual),
        ];
        for p in &all {
            for n in [0, -1, i32::MIN] {
                assert_eq!(
                    p.partition(&r, n).unwrap_err(),
                    Error::NoPartitions { partitions: n },
                    "{p:?}"
                );
            }
        }
    }
}
