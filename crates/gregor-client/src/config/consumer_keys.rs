//! Consumer properties (`group.id`, `auto.offset.reset`, `fetch.min.bytes`, ...). Owned by the consumer.
//!
//! Each key's default is Kafka's Java client's, so a `.properties` file written for a Java
//! consumer means the same here. Typed access for the consumer is at the end of the file.

use std::time::Duration;

use super::{Kind, MS_MAX, Property, Scope, Support};
use crate::config::ClientConfig;
use crate::error::{Error, Result};

use Scope::Consumer;

const fn ms(min: i64) -> Kind {
    Kind::Int { min, max: MS_MAX }
}

/// The largest fetch response gregor accepts is 64 MiB (`wire::MAX_RESPONSE_BYTES`); a fetch
/// may exceed `fetch.max.bytes` by one batch, so the setting stays well below that.
const FETCH_MAX_BYTES_LIMIT: i64 = 56 * 1024 * 1024;

/// Assignor names as the Java client puts them on the wire, and the class names a Java
/// `.properties` file may list instead.
pub(crate) const ASSIGNORS: &[(&str, &str)] = &[
    ("range", "org.apache.kafka.clients.consumer.RangeAssignor"),
    (
        "roundrobin",
        "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    ),
    (
        "cooperative-sticky",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    ),
];

/// The consumer's properties.
pub(crate) const CONSUMER: &[Property] = &[
    Property::new(
        "group.id",
        Consumer,
        Kind::Str,
        None,
        "Consumer group to join with subscribe(); with assign(), where committed offsets are read and written. Unset: no group, no commits.",
    ),
    Property::new(
        "group.instance.id",
        Consumer,
        Kind::Str,
        None,
        "Static membership: a stable id per instance, so a restart within session.timeout.ms rejoins without a rebalance.",
    ),
    Property::new(
        "group.protocol",
        Consumer,
        Kind::Enum(&["classic", "consumer"]),
        Some("classic"),
        "Group protocol. gregor speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat).",
    )
    .support(Support::Gap {
        refuse: |v| v == "consumer",
        note: "the KIP-848 consumer protocol is not implemented; use classic (the broker serves both)",
    }),
    Property::new(
        "partition.assignment.strategy",
        Consumer,
        Kind::List,
        Some("range,cooperative-sticky"),
        "Assignors in order of preference: range, roundrobin, cooperative-sticky (or the Java class names). Cooperative rebalancing is used only when every listed assignor supports it.",
    ),
    Property::new(
        "session.timeout.ms",
        Consumer,
        ms(1),
        Some("45000"),
        "A member that sends no heartbeat for this long is removed from the group and its partitions move.",
    ),
    Property::new(
        "heartbeat.interval.ms",
        Consumer,
        ms(1),
        Some("3000"),
        "How often the background task sends Heartbeat; must be below session.timeout.ms (a third of it is usual).",
    ),
    Property::new(
        "max.poll.interval.ms",
        Consumer,
        ms(1),
        Some("300000"),
        "Longest time between two polls; past it the member leaves the group so its partitions move. Also the rebalance timeout sent with JoinGroup.",
    ),
    Property::new(
        "enable.auto.commit",
        Consumer,
        Kind::Bool,
        Some("true"),
        "Commit the positions of delivered records every auto.commit.interval.ms, before a revoke and on close.",
    ),
    Property::new(
        "auto.commit.interval.ms",
        Consumer,
        ms(0),
        Some("5000"),
        "Interval of automatic commits (at poll time, as the Java client does).",
    ),
    Property::new(
        "auto.offset.reset",
        Consumer,
        Kind::Enum(&["earliest", "latest", "none"]),
        Some("latest"),
        "Where to start without a committed offset, or when it is out of range: earliest, latest, or none (an error naming the partition).",
    ),
    Property::new(
        "isolation.level",
        Consumer,
        Kind::Enum(&["read_uncommitted", "read_committed"]),
        Some("read_uncommitted"),
        "read_committed delivers only committed transactional records (reads up to the last stable offset; aborted records are filtered out).",
    ),
    Property::new(
        "fetch.min.bytes",
        Consumer,
        Kind::Int {
            min: 1,
            max: FETCH_MAX_BYTES_LIMIT,
        },
        Some("1"),
        "The broker waits for this many bytes (or fetch.max.wait.ms) before answering a fetch.",
    ),
    Property::new(
        "fetch.max.bytes",
        Consumer,
        Kind::Int {
            min: 1,
            max: FETCH_MAX_BYTES_LIMIT,
        },
        Some("52428800"),
        "Most bytes one fetch response carries (the first batch is returned even if larger).",
    ),
    Property::new(
        "fetch.max.wait.ms",
        Consumer,
        ms(0),
        Some("500"),
        "Longest time the broker holds a fetch waiting for fetch.min.bytes.",
    )
    .aliases(&["fetch.wait.max.ms"]),
    Property::new(
        "max.partition.fetch.bytes",
        Consumer,
        Kind::Int {
            min: 1,
            max: FETCH_MAX_BYTES_LIMIT,
        },
        Some("1048576"),
        "Most bytes per partition in one fetch (the first batch is returned even if larger).",
    )
    .aliases(&["fetch.message.max.bytes"]),
    Property::new(
        "max.poll.records",
        Consumer,
        Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        Some("500"),
        "Most records one poll_batch() returns.",
    ),
    Property::new(
        "check.crcs",
        Consumer,
        Kind::Bool,
        Some("true"),
        "Verify each record batch's CRC32C; a mismatch is reported with topic, partition and offset.",
    ),
];

/// Cross-key checks for consumer settings.
pub(crate) fn validate(config: &ClientConfig) -> Result<()> {
    let session = config.int("session.timeout.ms");
    let heartbeat = config.int("heartbeat.interval.ms");
    if heartbeat >= session {
        return Err(Error::config(
            "heartbeat.interval.ms",
            format!(
                "{heartbeat} must be below session.timeout.ms ({session}); a third of it is usual"
            ),
        ));
    }
    if config.is_set("group.instance.id") && config.get("group.id").is_none() {
        return Err(Error::config(
            "group.instance.id",
            "needs group.id: static membership is membership of a group",
        ));
    }
    if config.get("group.id").is_none()
        && config.is_set("enable.auto.commit")
        && config.get("enable.auto.commit") == Some("true")
    {
        return Err(Error::config(
            "enable.auto.commit",
            "true needs group.id: commits are stored per group",
        ));
    }
    let strategies = config.list("partition.assignment.strategy");
    if strategies.is_empty() {
        return Err(Error::config(
            "partition.assignment.strategy",
            "lists no assignor: use range, roundrobin or cooperative-sticky",
        ));
    }
    for s in &strategies {
        if assignor_name(s).is_none() {
            return Err(Error::config(
                "partition.assignment.strategy",
                format!(
                    "{s:?} is not an assignor gregor has: use range, roundrobin or cooperative-sticky"
                ),
            ));
        }
    }
    if config.int("fetch.min.bytes") > config.int("fetch.max.bytes") {
        return Err(Error::config(
            "fetch.min.bytes",
            "is larger than fetch.max.bytes: the broker could never answer early",
        ));
    }
    Ok(())
}

/// The wire name of an assignor given by name or Java class name.
pub(crate) fn assignor_name(s: &str) -> Option<&'static str> {
    ASSIGNORS
        .iter()
        .find(|(name, class)| name.eq_ignore_ascii_case(s) || *class == s)
        .map(|(name, _)| *name)
}

// ---- typed access for the consumer (values were checked when set) ----

impl ClientConfig {
    /// `group.id`, if set and not empty.
    pub(crate) fn group_id(&self) -> Option<&str> {
        self.get("group.id").filter(|g| !g.is_empty())
    }

    /// `group.instance.id`, if set and not empty.
    pub(crate) fn group_instance_id(&self) -> Option<&str> {
        self.get("group.instance.id").filter(|g| !g.is_empty())
    }

    /// `partition.assignment.strategy` as wire names, in order (unknown names were refused by
    /// `validate`).
    pub(crate) fn assignors(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self
            .list("partition.assignment.strategy")
            .iter()
            .filter_map(|s| assignor_name(s))
            .collect();
        out.dedup();
        out
    }

    /// `enable.auto.commit` (false without a group).
    pub(crate) fn auto_commit(&self) -> bool {
        self.group_id().is_some() && self.get("enable.auto.commit") == Some("true")
    }

    /// `auto.commit.interval.ms`.
    pub(crate) fn auto_commit_interval(&self) -> Duration {
        self.duration_ms("auto.commit.interval.ms")
    }

    /// `session.timeout.ms`.
    pub(crate) fn session_timeout(&self) -> Duration {
        self.duration_ms("session.timeout.ms")
    }

    /// `heartbeat.interval.ms`.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.duration_ms("heartbeat.interval.ms")
    }

    /// `max.poll.interval.ms`.
    pub(crate) fn max_poll_interval(&self) -> Duration {
        self.duration_ms("max.poll.interval.ms")
    }

    /// `auto.offset.reset`.
    pub(crate) fn offset_reset(&self) -> &str {
        self.get("auto.offset.reset").unwrap_or("latest")
    }

    /// `isolation.level` is read_committed.
    pub(crate) fn read_committed(&self) -> bool {
        self.get("isolation.level") == Some("read_committed")
    }

    /// A property that is an `i32` on the wire (checked to fit when set).
    pub(crate) fn int32(&self, key: &str) -> i32 {
        i32::try_from(self.int(key)).unwrap_or(i32::MAX)
    }

    /// `max.poll.records`.
    pub(crate) fn max_poll_records(&self) -> usize {
        usize::try_from(self.int("max.poll.records")).unwrap_or(500)
    }

    /// `check.crcs`.
    pub(crate) fn check_crcs(&self) -> bool {
        self.get("check.crcs") != Some("false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientConfig {
        ClientConfig::new().set("bootstrap.servers", "h:1").unwrap()
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let c = base();
        assert_eq!(c.session_timeout(), Duration::from_secs(45));
        assert_eq!(c.heartbeat_interval(), Duration::from_secs(3));
        assert_eq!(c.max_poll_interval(), Duration::from_secs(300));
        assert_eq!(c.offset_reset(), "latest");
        assert_eq!(c.assignors(), vec!["range", "cooperative-sticky"]);
        assert_eq!(c.int32("fetch.max.bytes"), 52_428_800);
        assert_eq!(c.int32("max.partition.fetch.bytes"), 1_048_576);
        assert!(!c.auto_commit(), "no group, no auto-commit");
        assert!(c.set("group.id", "g").unwrap().auto_commit());
    }

    #[test]
    fn java_class_names_and_librdkafka_aliases_are_accepted() {
        let c = base()
            .set(
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            )
            .unwrap()
            .set("fetch.wait.max.ms", "100")
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.assignors(), vec!["cooperative-sticky"]);
        assert_eq!(c.int32("fetch.max.wait.ms"), 100);
    }

    #[test]
    fn bad_combinations_name_the_key_to_change() {
        let e = base()
            .set("heartbeat.interval.ms", "50000")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("heartbeat.interval.ms"), "{e}");
        let e = base()
            .set("group.instance.id", "a")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("needs group.id"), "{e}");
        let e = base()
            .set("partition.assignment.strategy", "sticky")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("cooperative-sticky"), "{e}");
        let e = base()
            .set("enable.auto.commit", "true")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("group.id"), "{e}");
        let e = base().set("group.protocol", "consumer").unwrap_err();
        assert!(e.to_string().contains("classic"), "{e}");
        let e = base().set("auto.offset.reset", "smallest").unwrap_err();
        assert!(e.to_string().contains("earliest"), "{e}");
    }
}
