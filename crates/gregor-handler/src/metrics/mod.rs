//! Prometheus metrics with the classic names, one label set per metric:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `kafka_messages_produced_total` | counter | `topic`, `status` (`success`, `error`) |
//! | `kafka_messages_consumed_total` | counter | `topic`, `partition`, `consumer_group` |
//! | `kafka_consumer_lag` | gauge | `topic`, `partition`, `consumer_group` |
//! | `kafka_message_processing_duration_seconds` | histogram | `topic`, `event_type` |
//! | `kafka_message_retries_total` | counter | `topic` |
//! | `kafka_messages_dead_lettered_total` | counter | `topic` |
//! | `kafka_messages_handled_total` | counter | `topic`, `outcome` (`processed`, `filtered`, `skipped`, `dead_lettered`, `duplicate`, `failed`, `deferred`) |
//!
//! [`Metrics`] registers them in a `prometheus_client` registry (serve it with
//! gregor-telemetry's `MetricsServer`); [`MetricsLayer`] counts what passes through it, the
//! worker sets the lag gauge, producers count what they sent.

mod layer;
mod service;

pub use layer::{Metrics, MetricsLayer};
pub use service::MetricsService;
