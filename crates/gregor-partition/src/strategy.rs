//! `Strategy`: a named way to partition, making one partitioner per topic. The names are the
//! values of the `partitioner` property (librdkafka's names, the Java client's class names,
//! and gregor's own).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::Partitioner;
use crate::builtin::{
    Crc32, Fnv1a, Fnv1aVariant, Manual, Murmur2, Priority, Random, RoundRobin, Sticky,
};
use crate::error::{Error, Result};
use crate::keyless::Keyless;

type Make = Arc<dyn Fn(&str) -> Arc<dyn Partitioner> + Send + Sync>;

/// Makes the partitioner of each topic a producer sends to.
///
/// [`Strategy::named`] takes the value of the `partitioner` property; [`Strategy::from_fn`]
/// wraps your own partitioner. The default is the Java client's: murmur2 for keyed records,
/// sticky for keyless ones.
///
/// ```
/// use gregor_partition::{Partitioner, RecordView, Strategy};
///
/// let strategy = Strategy::named("murmur2_random")?; // librdkafka's name
/// let orders = strategy.for_topic("orders");
/// assert!(orders.partition(&RecordView::new(Some(b"user-1")), 6)? < 6);
/// assert_eq!(Strategy::default().name(), "default");
/// assert!(Strategy::named("murmur3").unwrap_err().to_string().contains("murmur2"));
/// # Ok::<(), gregor_partition::Error>(())
/// ```
#[derive(Clone)]
pub struct Strategy {
    name: Cow<'static, str>,
    make: Make,
}

/// Every name [`Strategy::named`] accepts: `(name, what it is)`. Java class names are accepted
/// as aliases (see [`Strategy::named`]).
pub const NAMES: &[(&str, &str)] = &[
    (
        "default",
        "murmur2 for keys (the Java client's placement), sticky for keyless records",
    ),
    (
        "murmur2",
        "murmur2 for keys; keyless records hashed like an empty key (librdkafka murmur2)",
    ),
    (
        "murmur2_random",
        "murmur2 for keys; keyless records to a random partition (librdkafka murmur2_random)",
    ),
    (
        "sticky",
        "every record sticky: one partition until its batch is sealed (KIP-480)",
    ),
    (
        "round_robin",
        "partitions in turn, keys ignored (Java RoundRobinPartitioner)",
    ),
    (
        "random",
        "a random partition per record (librdkafka random)",
    ),
    (
        "consistent",
        "CRC-32 of the key; keyless records to partition 0 (librdkafka consistent)",
    ),
    (
        "consistent_random",
        "CRC-32 of the key; keyless records random (librdkafka's default)",
    ),
    (
        "fnv1a",
        "FNV-1a, abs of the signed modulo; keyless hashed like an empty key (librdkafka fnv1a)",
    ),
    (
        "fnv1a_random",
        "FNV-1a, abs of the signed modulo; keyless random (librdkafka fnv1a_random, sarama NewHashPartitioner)",
    ),
    (
        "hash",
        "FNV-1a, abs of the signed modulo; keyless round-robin (kafka-go's Hash balancer)",
    ),
    (
        "fnv1a_unsigned",
        "FNV-1a, Sum32() % n on unsigned values; keyless round-robin (plain Go fnv)",
    ),
    (
        "priority",
        "header priority=high to partition 0, murmur2/sticky over the others",
    ),
    ("manual", "every record must name its partition"),
];

const ALIASES: &[(&str, &str)] = &[
    (
        "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
        "default",
    ),
    (
        "org.apache.kafka.clients.producer.UniformStickyPartitioner",
        "sticky",
    ),
    (
        "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        "round_robin",
    ),
    ("roundrobin", "round_robin"),
];

impl Strategy {
    /// The strategy called `name` (case ignored): one of [`NAMES`], or a Java partitioner
    /// class name (`org.apache.kafka.clients.producer.RoundRobinPartitioner`, ...). An unknown
    /// name is [`Error::UnknownPartitioner`] listing the known ones.
    pub fn named(name: &str) -> Result<Strategy> {
        let lower = name.trim().to_ascii_lowercase();
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(&lower))
            .map_or(lower.as_str(), |(_, to)| *to);
        let (name, make): (&'static str, Make) = match canonical {
            "default" => (
                "default",
                Arc::new(|_: &str| Arc::new(Murmur2::new()) as Arc<dyn Partitioner>),
            ),
            "murmur2" => ("murmur2", keyed_murmur2(Keyless::Hash)),
            "murmur2_random" => ("murmur2_random", keyed_murmur2(Keyless::Random)),
            "sticky" => (
                "sticky",
                Arc::new(|_: &str| Arc::new(Sticky::new()) as Arc<dyn Partitioner>),
            ),
            "round_robin" => (
                "round_robin",
                Arc::new(|_: &str| Arc::new(RoundRobin::new()) as Arc<dyn Partitioner>),
            ),
            "random" => (
                "random",
                Arc::new(|_: &str| Arc::new(Random::new()) as Arc<dyn Partitioner>),
            ),
            "consistent" => (
                "consistent",
                Arc::new(|_: &str| Arc::new(Crc32::consistent()) as Arc<dyn Partitioner>),
            ),
            "consistent_random" => (
                "consistent_random",
                Arc::new(|_: &str| Arc::new(Crc32::consistent_random()) as Arc<dyn Partitioner>),
            ),
            "fnv1a" => ("fnv1a", fnv(Fnv1aVariant::Sarama, Keyless::Hash)),
            "fnv1a_random" => ("fnv1a_random", fnv(Fnv1aVariant::Sarama, Keyless::Random)),
            "hash" => ("hash", fnv(Fnv1aVariant::Sarama, Keyless::RoundRobin)),
            "fnv1a_unsigned" => (
                "fnv1a_unsigned",
                fnv(Fnv1aVariant::Unsigned, Keyless::RoundRobin),
            ),
            "priority" => (
                "priority",
                Arc::new(|_: &str| Arc::new(Priority::new(0)) as Arc<dyn Partitioner>),
            ),
            "manual" => (
                "manual",
                Arc::new(|_: &str| Arc::new(Manual) as Arc<dyn Partitioner>),
            ),
            _ => {
                return Err(Error::UnknownPartitioner {
                    name: name.to_owned(),
                    known: NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                });
            }
        };
        Ok(Strategy {
            name: Cow::Borrowed(name),
            make,
        })
    }

    /// A strategy of your own: `make` is called once per topic with the topic's name. Return a
    /// shared instance from it to use one partitioner for every topic.
    pub fn from_fn(
        name: impl Into<Cow<'static, str>>,
        make: impl Fn(&str) -> Arc<dyn Partitioner> + Send + Sync + 'static,
    ) -> Strategy {
        Strategy {
            name: name.into(),
            make: Arc::new(make),
        }
    }

    /// The name it was made with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A partitioner for `topic`, with state of its own.
    pub fn for_topic(&self, topic: &str) -> Arc<dyn Partitioner> {
        (self.make)(topic)
    }
}

fn keyed_murmur2(keyless: Keyless) -> Make {
    Arc::new(move |_: &str| Arc::new(Murmur2::with_keyless(keyless)) as Arc<dyn Partitioner>)
}

fn fnv(variant: Fnv1aVariant, keyless: Keyless) -> Make {
    Arc::new(move |_: &str| Arc::new(Fnv1a::new(variant, keyless)) as Arc<dyn Partitioner>)
}

impl Default for Strategy {
    fn default() -> Strategy {
        Strategy {
            name: Cow::Borrowed("default"),
            make: Arc::new(|_: &str| Arc::new(Murmur2::new()) as Arc<dyn Partitioner>),
        }
    }
}

impl fmt::Debug for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Strategy").field(&self.name).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordView;

    #[test]
    fn every_name_builds_and_places_within_range() {
        for (name, _) in NAMES {
            let s = Strategy::named(name).unwrap();
            assert_eq!(s.name(), *name);
            let p = s.for_topic("t");
            let got = p.partition(&RecordView::new(Some(b"k")), 5);
            if *name == "manual" {
                assert_eq!(got, Err(Error::PartitionRequired));
            } else {
                assert!((0..5).contains(&got.unwrap()), "{name}");
            }
        }
    }

    #[test]
    fn java_class_names_and_case_are_accepted() {
        assert_eq!(
            Strategy::named("org.apache.kafka.clients.producer.RoundRobinPartitioner")
                .unwrap()
                .name(),
            "round_robin"
        );
        assert_eq!(
            Strategy::named(" Murmur2_Random ").unwrap().name(),
            "murmur2_random"
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = Strategy::named("murmur3").unwrap_err();
        let Error::UnknownPartitioner { name, known } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(name, "murmur3");
        assert!(known.contains("murmur2_random") && known.contains("consistent_random"));
    }

    #[test]
    fn each_topic_gets_its_own_state() {
        let s = Strategy::named("round_robin").unwrap();
        let (a, b) = (s.for_topic("a"), s.for_topic("b"));
        let r = RecordView::new(None);
        assert_eq!(a.partition(&r, 3).unwrap(), 0);
        assert_eq!(a.partition(&r, 3).unwrap(), 1);
        assert_eq!(b.partition(&r, 3).unwrap(), 0);
    }

    #[test]
    fn named_murmur2_variants_differ_on_keyless_records() {
        let consistent = Strategy::named("murmur2").unwrap().for_topic("t");
        let none = RecordView::new(None);
        let first = consistent.partition(&none, 12).unwrap();
        for _ in 0..50 {
            assert_eq!(consistent.partition(&none, 12).unwrap(), first);
        }
        let random = Strategy::named("murmur2_random").unwrap().for_topic("t");
        let spread: std::collections::BTreeSet<i32> = (0..200)
            .map(|_| random.partition(&none, 12).unwrap())
            .collect();
        assert!(spread.len() > 6, "{spread:?}");
    }
}
