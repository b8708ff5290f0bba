#![doc = include_str!("../README.md")]

mod admin;
mod config;
mod error;
mod wire;

pub use admin::{
    Admin, BrokerInfo, ClusterMetadata, ListedOffset, NewTopic, OffsetSpec, PartitionInfo,
    TopicInfo,
};
pub use config::{ClientConfig, Kind, Property, Scope, Support, properties};
pub use error::{Context, Error, KafkaCode, Result};
