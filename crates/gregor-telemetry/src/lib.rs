#![doc = include_str!("../README.md")]

mod metrics;
mod tracing_setup;

pub use metrics::MetricsServer;
pub use tracing_setup::{Exporter, TracingConfig, TracingGuard, init_tracing};

/// What can go wrong setting up telemetry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tracing or OpenTelemetry pipeline could not be built.
    #[error("tracing setup: {0}")]
    Tracing(String),
}
