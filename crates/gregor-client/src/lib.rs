#![doc = include_str!("../README.md")]

mod admin;
mod config;
mod consumer;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group_admin;
mod producer;
mod security;
mod wire;

pub use admin::{
    Admin, BrokerInfo, ClusterMetadata, ListedOffset, NewTopic, OffsetSpec, PartitionInfo,
    TopicInfo,
};
pub use config::{ClientConfig, Kind, Property, Scope, Support, properties};
pub use consumer::{
    Commits, Consumer, CorruptPolicy, Header, MAX_DECOMPRESSED, PartitionLag, RebalanceListener,
    Record, Stats, TimestampType, TopicPartition,
};
pub use error::{Context, Error, KafkaCode, Result, TlsFailure};
pub use group_admin::{GroupDescription, GroupLag, GroupListing, GroupMember};
pub use producer::{
    Delivery, DeliveryFuture, LatencyHistogram, PartitionStats, Producer, ProducerBuilder,
    ProducerRecord, ProducerStats, RecordMetadata,
};
