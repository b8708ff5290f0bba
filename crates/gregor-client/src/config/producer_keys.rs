//! Producer properties (`acks`, `linger.ms`, `compression.type`, ...). Owned by the producer.
//!
//! Defaults are the Java client's (Kafka 4.x: `linger.ms` 5), so a `.properties` file written
//! for a Java producer means the same here; librdkafka's names are accepted as aliases where
//! they mean the same thing. What rskafka cannot do is refused or warned about, never ignored:
//! acks other than `all` (rskafka always sends acks=-1), idempotence, transactions.

use super::{Kind, MS_MAX, Property, Scope, Support};
use crate::config::ClientConfig;
use crate::error::{Error, Result};

use Scope::Producer;

const fn ms(min: i64) -> Kind {
    Kind::Int { min, max: MS_MAX }
}

/// The broker refuses requests above `socket.request.max.bytes` (100 MiB by default); a single
/// produce request stays well below it.
const MAX_REQUEST_LIMIT: i64 = 64 * 1024 * 1024;

/// Values of `partitioner`: gregor-partition's strategy names and the Java class names it
/// accepts (a test keeps this list equal to gregor-partition's).
pub(crate) const PARTITIONERS: &[&str] = &[
    "default",
    "murmur2",
    "murmur2_random",
    "sticky",
    "round_robin",
    "random",
    "consistent",
    "consistent_random",
    "fnv1a",
    "fnv1a_random",
    "hash",
    "fnv1a_unsigned",
    "priority",
    "manual",
    "roundrobin",
    "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
    "org.apache.kafka.clients.producer.UniformStickyPartitioner",
    "org.apache.kafka.clients.producer.RoundRobinPartitioner",
];

/// The producer's properties.
pub(crate) const PRODUCER: &[Property] = &[
    Property::new(
        "acks",
        Producer,
        Kind::Enum(&["all", "-1", "1", "0"]),
        Some("all"),
        "Acknowledgements a produce request waits for. gregor always waits for all in-sync replicas (acks=-1), the strongest setting.",
    )
    .aliases(&["request.required.acks"])
    .support(Support::Warn {
        when: |v| v == "0" || v == "1",
        note: "rskafka always sends acks=-1: every send waits for all in-sync replicas (more durable, slower than asked)",
    }),
    Property::new(
        "linger.ms",
        Producer,
        ms(0),
        Some("5"),
        "How long a partition's batch waits for more records before it is sent (unless batch.size fills it first).",
    )
    .aliases(&["queue.buffering.max.ms"]),
    Property::new(
        "batch.size",
        Producer,
        Kind::Int {
            min: 1,
            max: MAX_REQUEST_LIMIT,
        },
        Some("16384"),
        "Bytes of records that make a partition's batch ready to send at once. While earlier requests to the partition are in flight, records keep collecting into one batch of up to max.request.size.",
    ),
    Property::new(
        "batch.num.messages",
        Producer,
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        Some("10000"),
        "Most records in one batch (librdkafka's name; the Java client has no record limit).",
    ),
    Property::new(
        "max.request.size",
        Producer,
        Kind::Int {
            min: 1024,
            max: MAX_REQUEST_LIMIT,
        },
        Some("1048576"),
        "Largest produce request, and so the largest record: a bigger record is refused before it is sent (MESSAGE_TOO_LARGE). Keep it at or below the topic's max.message.bytes.",
    )
    .aliases(&["message.max.bytes"]),
    Property::new(
        "compression.type",
        Producer,
        Kind::Enum(&["none", "gzip", "snappy", "lz4", "zstd"]),
        Some("none"),
        "Codec for record batches: none, gzip, snappy, lz4 or zstd (rskafka's default levels).",
    )
    .aliases(&["compression.codec"]),
    Property::new(
        "retries",
        Producer,
        Kind::Int {
            min: 0,
            max: MS_MAX,
        },
        Some("2147483647"),
        "How often a batch that failed with a retriable error is sent again, within delivery.timeout.ms.",
    )
    .aliases(&["message.send.max.retries"])
    .support(Support::Warn {
        when: |v| v == "0",
        note: "rskafka itself still resends after a broken connection or a leader move (within delivery.timeout.ms); only gregor's own retries stop",
    }),
    Property::new(
        "delivery.timeout.ms",
        Producer,
        ms(1),
        Some("120000"),
        "Upper bound on the time from send to a delivery result, retries included; then the record fails with a timeout.",
    )
    .aliases(&["message.timeout.ms"]),
    Property::new(
        "max.in.flight.requests.per.connection",
        Producer,
        Kind::Int { min: 1, max: 64 },
        Some("1"),
        "Produce requests in flight per partition. 1 (the default) keeps each partition's order even when a batch is retried; with more, a batch retried by gregor or inside rskafka (a broken connection, a leader move, a topic just created) can land after a later one, since there is no idempotence. The Java client's default of 5 relies on idempotence.",
    )
    .aliases(&["max.in.flight"]),
    Property::new(
        "buffer.memory",
        Producer,
        Kind::Int {
            min: 1024,
            max: 1 << 40,
        },
        Some("33554432"),
        "Bytes of records accepted but not yet delivered; send waits (up to max.block.ms) while it is full.",
    ),
    Property::new(
        "queue.buffering.max.messages",
        Producer,
        Kind::Int {
            min: 1,
            max: 100_000_000,
        },
        Some("100000"),
        "Records accepted but not yet delivered; send waits (up to max.block.ms) while it is full (librdkafka's name).",
    ),
    Property::new(
        "max.block.ms",
        Producer,
        ms(0),
        Some("60000"),
        "How long send waits for buffer space or for a topic's metadata before failing with a timeout.",
    ),
    Property::new(
        "partitioner",
        Producer,
        Kind::Enum(PARTITIONERS),
        Some("default"),
        "Where records go: default (murmur2 for keys like the Java client, sticky without), murmur2, murmur2_random, consistent_random (librdkafka's default), consistent, fnv1a, fnv1a_random, hash (kafka-go), fnv1a_unsigned, sticky, round_robin, random, priority, manual; Java partitioner class names are accepted.",
    )
    .aliases(&["partitioner.class"]),
    Property::new(
        "enable.idempotence",
        Producer,
        Kind::Bool,
        Some("false"),
        "Idempotent produce (producer ids and sequence numbers).",
    )
    .support(Support::Gap {
        refuse: |v| v == "true",
        note: "rskafka has no idempotent producer; delivery is at-least-once (a retried batch may be written twice)",
    }),
    Property::new(
        "transactional.id",
        Producer,
        Kind::Str,
        None,
        "Transactional producer id.",
    )
    .support(Support::Gap {
        refuse: |v| !v.is_empty(),
        note: "transactions are not available: rskafka has no transactional producer",
    }),
];

/// Cross-key checks for producer settings.
pub(crate) fn validate(config: &ClientConfig) -> Result<()> {
    let delivery = config.int("delivery.timeout.ms");
    let linger = config.int("linger.ms");
    let request = config.int("request.timeout.ms");
    if delivery < linger + request {
        return Err(Error::config(
            "delivery.timeout.ms",
            format!(
                "{delivery} is below linger.ms + request.timeout.ms = {}: raise delivery.timeout.ms or lower the others",
                linger + request
            ),
        ));
    }
    let buffer = config.int("buffer.memory");
    let max_request = config.int("max.request.size");
    if max_request > buffer {
        return Err(Error::config(
            "max.request.size",
            format!(
                "{max_request} is above buffer.memory = {buffer}: a record that size could never be accepted"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientConfig {
        ClientConfig::new().set("bootstrap.servers", "h:1").unwrap()
    }

    #[test]
    fn partitioner_names_are_gregor_partitions() {
        for name in PARTITIONERS {
            gregor_partition::Strategy::named(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (name, _) in gregor_partition::NAMES {
            assert!(
                PARTITIONERS.contains(name),
                "{name} missing from PARTITIONERS"
            );
        }
        let e = base().set("partitioner", "murmur3").unwrap_err();
        assert!(e.to_string().contains("murmur2_random"), "{e}");
        assert_eq!(
            base()
                .set("partitioner", "Murmur2_Random")
                .unwrap()
                .get("partitioner"),
            Some("murmur2_random")
        );
    }

    #[test]
    fn acks_other_than_all_warn_and_never_silently() {
        let c = base().set("acks", "1").unwrap();
        assert_eq!(c.warnings().len(), 1);
        assert!(c.warnings()[0].contains("acks=-1"), "{:?}", c.warnings());
        assert!(base().set("acks", "all").unwrap().warnings().is_empty());
        assert!(base().set("acks", "-1").unwrap().warnings().is_empty());
        let c = base().set("request.required.acks", "0").unwrap();
        assert_eq!(c.get("acks"), Some("0"));
        assert_eq!(c.warnings().len(), 1);
    }

    #[test]
    fn what_rskafka_cannot_do_is_refused() {
        let e = base().set("enable.idempotence", "true").unwrap_err();
        assert!(e.to_string().contains("at-least-once"), "{e}");
        assert!(base().set("enable.idempotence", "false").is_ok());
        let e = base().set("transactional.id", "tx-1").unwrap_err();
        assert!(e.to_string().contains("transactions"), "{e}");
    }

    #[test]
    fn librdkafka_names_are_aliases() {
        let c = base()
            .set("queue.buffering.max.ms", "20")
            .unwrap()
            .set("compression.codec", "lz4")
            .unwrap()
            .set("message.timeout.ms", "90000")
            .unwrap();
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("delivery.timeout.ms"), Some("90000"));
        let e = base().set("compression.type", "brotli").unwrap_err();
        assert!(e.to_string().contains("zstd"), "{e}");
        let e = base().set("linger.msec", "5").unwrap_err();
        assert!(e.to_string().contains("did you mean `linger.ms`"), "{e}");
    }

    #[test]
    fn combinations_are_checked() {
        let e = base()
            .set("delivery.timeout.ms", "1000")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            e.to_string().starts_with("config delivery.timeout.ms:"),
            "{e}"
        );
        assert!(
            e.to_string().contains("linger.ms + request.timeout.ms"),
            "{e}"
        );
        let e = base()
            .set("buffer.memory", "2048")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with("config max.request.size:"), "{e}");
        base().validate().unwrap();
    }
}
