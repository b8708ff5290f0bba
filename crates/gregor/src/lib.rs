#![doc = include_str!("../README.md")]

mod client_metrics;
mod dead_letter;
mod doctests;
mod error;
mod typed;
pub mod worker;

pub use client_metrics::{ConsumerMetrics, ProducerMetrics};
pub use dead_letter::ProducerPublisher;
pub use error::{Error, Result};
pub use typed::{SendEvent, record_from_event};
pub use worker::{Shutdown, Worker, WorkerBuilder, WorkerStats};

pub use gregor_client as client;
pub use gregor_codec as codec;
pub use gregor_event as event;
pub use gregor_handler as handler;
pub use gregor_partition as partition;
pub use gregor_telemetry as telemetry;
