//! Why an event could not be built, converted or read.

/// Everything that can go wrong in the event model. Nothing here ever panics on input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The envelope's `type` is not one the target type knows.
    #[error("unknown event type {event_type:?}: expected one of {expected:?}")]
    UnknownEventType {
        /// The type found.
        event_type: String,
        /// The types the target accepts.
        expected: &'static [&'static str],
    },

    /// The envelope says one type and its data another (e.g. `order.paid` with status `created`).
    #[error("event type {event_type:?} does not match its data, which is a {data_type:?}")]
    TypeMismatch {
        /// The envelope's `type`.
        event_type: String,
        /// The type the data implies.
        data_type: String,
    },

    /// JSON that does not match the expected shape.
    #[error("{what}: {source}")]
    Json {
        /// What was being read or written (e.g. "data of order.created").
        what: String,
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// A header the conversion needs is missing.
    #[error("header {name:?} is missing")]
    MissingHeader {
        /// Header key.
        name: String,
    },

    /// A header is present but its value is not valid.
    #[error("header {name:?} is invalid: {reason}")]
    InvalidHeader {
        /// Header key.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A metadata key that cannot be a CloudEvents extension attribute name.
    #[error(
        "metadata key {key:?} cannot be a CloudEvents extension (lowercase a-z and 0-9 only, at most 20 characters, not a reserved name)"
    )]
    InvalidExtensionName {
        /// The key.
        key: String,
    },

    /// An event's data cannot be carried as the envelope's JSON data.
    #[error("event data with content type {content_type:?} is not JSON: {reason}")]
    UnsupportedData {
        /// The content type declared.
        content_type: String,
        /// Why it could not be read.
        reason: String,
    },
}

/// Result with the event model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
