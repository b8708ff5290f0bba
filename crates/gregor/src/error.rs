//! The facade's error: what building or running a worker can fail with.

/// Errors of the `gregor` crate; the layered crates' errors chain in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or does not fit.
    #[error("config {key}: {message}")]
    Config {
        /// The setting (a Kafka property name or a builder setting).
        key: String,
        /// What to change.
        message: String,
    },
    /// The Kafka client failed.
    #[error(transparent)]
    Client(#[from] gregor_client::Error),
    /// A codec failed (a topic without a codec, a refused schema).
    #[error(transparent)]
    Codec(#[from] gregor_codec::Error),
    /// The handler stack failed.
    #[error(transparent)]
    Handler(gregor_handler::Error),
    /// Telemetry setup failed.
    #[error(transparent)]
    Telemetry(#[from] gregor_telemetry::Error),
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
