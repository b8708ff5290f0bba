//! The one error type of gregor-partition.

/// Why a partition could not be chosen. Every case is a configuration or input problem the
/// caller can act on; none is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topic has no partitions as far as the caller knows (a count of 0 or less).
    #[error("cannot choose a partition among {partitions} partitions: a topic has at least 1")]
    NoPartitions {
        /// The count that was passed.
        partitions: i32,
    },

    /// The partitioner needs more partitions than the topic has (`Priority` reserves one and
    /// hashes over the others, so it needs at least 2).
    #[error(
        "the {partitioner} partitioner needs at least {needed} partitions, the topic has {partitions}: {hint}"
    )]
    TooFewPartitions {
        /// Which partitioner.
        partitioner: &'static str,
        /// How many the topic has.
        partitions: i32,
        /// How many it needs.
        needed: i32,
        /// What to change.
        hint: &'static str,
    },

    /// A configured partition does not exist in the topic (the `Priority` reserved partition).
    #[error("partition {partition} does not exist: the topic has partitions 0..{partitions}")]
    NoSuchPartition {
        /// The configured partition.
        partition: i32,
        /// How many the topic has.
        partitions: i32,
    },

    /// The `Manual` partitioner was asked to choose: records sent with it must name their
    /// partition.
    #[error("the manual partitioner needs an explicit partition on every record")]
    PartitionRequired,

    /// A partitioner name (the `partitioner` property) that is not known.
    #[error("unknown partitioner {name:?}: use one of {known}")]
    UnknownPartitioner {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },

    /// A custom partitioner failed or returned a partition outside `0..partitions`.
    #[error("{message}")]
    Custom {
        /// What went wrong.
        message: String,
    },
}

/// Result with gregor-partition's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok(())` for a usable partition count, the typed error otherwise.
pub(crate) fn check_count(partitions: i32) -> Result<()> {
    if partitions < 1 {
        Err(Error::NoPartitions { partitions })
    } else {
        Ok(())
    }
}
