//! Handler errors and their classification.

use std::fmt;
use std::time::Duration;

/// A boxed error from outside gregor (a handler's own error type, tower's errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the layers do with an error. Classification is data: every [`Error`] has one, and a
/// handler chooses it with [`Error::retriable`], [`Error::fatal`] or the specific constructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Transient: the retry layer tries again (bounded), then the dead-letter layer takes it.
    Retriable,
    /// Permanent: never retried; dead-lettered at once (deserialization, validation,
    /// authorization, a panic, an unknown event type sent to the dead-letter fallback).
    Fatal,
    /// Not now: neither retried nor dead-lettered. The worker pauses the partition for the
    /// given time and delivers the same record again (an open circuit breaker, a retry whose
    /// backoff would hold the group past `max.poll.interval.ms`).
    Deferred,
}

impl ErrorClass {
    /// `retriable`, `fatal` or `deferred` (the value of the dead-letter `error_class` header).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retriable => "retriable",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Deferred => "deferred",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the retry layer stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUp {
    /// `max_attempts` reached.
    Attempts,
    /// The next backoff would pass `max_elapsed`.
    Elapsed,
    /// The next backoff would pass the poll budget (`max.poll.interval.ms` less a margin).
    PollBudget,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GaveUp::Attempts => "max attempts reached",
            GaveUp::Elapsed => "max elapsed time reached",
            GaveUp::PollBudget => "the next backoff would exceed the poll budget",
        })
    }
}

/// Everything a handler stack can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record's bytes could not be decoded into an event. Fatal.
    #[error("cannot decode {topic}/{partition} at offset {offset}: {message}")]
    Deserialization {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// What the decoder said.
        message: String,
    },
    /// The event was decoded but is not acceptable (a typed read failed, a business rule). Fatal.
    #[error("invalid event: {message}")]
    Validation {
        /// What is wrong.
        message: String,
    },
    /// The handler may not do this. Fatal.
    #[error("not authorized: {message}")]
    Authorization {
        /// What was refused.
        message: String,
    },
    /// The router has no handler for this event type and its fallback is dead-letter. Fatal.
    #[error("no handler for event type {event_type:?}")]
    UnknownEventType {
        /// The event type (`(none)` when it could not be read).
        event_type: String,
    },
    /// A handler's own error, with the class it chose.
    #[error("handler failed ({class}): {source}")]
    Handler {
        /// Retriable, fatal or deferred.
        class: ErrorClass,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// The handler did not finish in time. Retriable.
    #[error("handler timed out after {after:?}")]
    Timeout {
        /// The limit.
        after: Duration,
    },
    /// The handler panicked; the recover layer turned the panic into this error. Fatal.
    #[error("handler panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The circuit breaker is open. Deferred.
    #[error("circuit breaker open; next probe in {retry_after:?}")]
    CircuitOpen {
        /// Time until the breaker lets a probe through.
        retry_after: Duration,
    },
    /// Deliver the record again later (the retry layer's poll-budget action is pause). Deferred.
    #[error("deferred for {retry_after:?}: {source}")]
    Deferred {
        /// How long to pause the partition.
        retry_after: Duration,
        /// The error that was being retried.
        #[source]
        source: Box<Error>,
    },
    /// The retry layer stopped; the class is the last error's.
    #[error("gave up after {attempts} attempts ({reason}): {source}")]
    RetriesExhausted {
        /// Attempts made (1 + retries).
        attempts: u32,
        /// Why it stopped.
        reason: GaveUp,
        /// The last error.
        #[source]
        source: Box<Error>,
    },
    /// Publishing to the dead-letter topic failed: the record is not done, its offset is not
    /// committed. Retriable.
    #[error("dead-letter publish to {topic} failed: {source} (while handling: {cause})")]
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
        /// Why the publish failed.
        #[source]
        source: BoxError,
        /// The handler error that sent the record to the dead-letter topic.
        cause: Box<Error>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A transient handler error: retried, then dead-lettered.
    pub fn retriable(source: impl Into<BoxError>) -> Error {
        Error::Handler {
            class: ErrorClass::Retriable,
            source: source.into(),
        }
    }

    /// A permanent handler error: dead-lettered at once.
    pub fn fatal(source: impl Into<BoxError>) -> Error {
        Error::Handler {
            class: ErrorClass::Fatal,
            source: source.into(),
        }
    }

    /// A validation failure (fatal).
    pub fn validation(message: impl Into<String>) -> Error {
        Error::Validation {
            message: message.into(),
        }
    }

    /// An authorization failure (fatal).
    pub fn authorization(message: impl Into<String>) -> Error {
        Error::Authorization {
            message: message.into(),
        }
    }

    /// The class the layers act on.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Deserialization { .. }
            | Error::Validation { .. }
            | Error::Authorization { .. }
            | Error::UnknownEventType { .. }
            | Error::Panicked { .. } => ErrorClass::Fatal,
            Error::Handler { class, .. } => *class,
            Error::Timeout { .. } | Error::DeadLetter { .. } => ErrorClass::Retriable,
            Error::CircuitOpen { .. } | Error::Deferred { .. } => ErrorClass::Deferred,
            Error::RetriesExhausted { source, .. } => source.class(),
        }
    }

    /// True for [`ErrorClass::Retriable`].
    pub fn is_retriable(&self) -> bool {
        self.class() == ErrorClass::Retriable
    }

    /// For deferred errors, how long to wait before delivering the record again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::CircuitOpen { retry_after } | Error::Deferred { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::Handler {
                class: ErrorClass::Deferred,
                ..
            } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The innermost gregor error: what actually went wrong, below retry and deferral wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::RetriesExhausted { source, .. } | Error::Deferred { source, .. } => {
                source.root()
            }
            e => e,
        }
    }

    /// Converts any boxed error: a boxed [`Error`] is unwrapped, tower's timeout becomes
    /// [`Error::Timeout`]; an error whose chain names a
    /// Kafka authorization or authentication failure (`TOPIC_AUTHORIZATION_FAILED`, any other
    /// `*_AUTHORIZATION_FAILED`, `SASL_AUTHENTICATION_FAILED`) becomes a
    /// fatal [`Error::Authorization`] (retrying cannot grant an ACL); anything else a retriable
    /// [`Error::Handler`].
    pub fn from_boxed(e: BoxError) -> Error {
        match e.downcast::<Error>() {
            Ok(e) => *e,
            Err(e) if names_kafka_auth_failure(&*e) => Error::Authorization {
                message: chain(&*e),
            },
            Err(e) => Error::retriable(e),
        }
    }
}

impl From<BoxError> for Error {
    fn from(e: BoxError) -> Error {
        Error::from_boxed(e)
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(e: std::convert::Infallible) -> Error {
        match e {}
    }
}

/// Kafka's names of authorization and authentication failures (protocol constants, from
/// Kafka's error table). gregor-handler does not depend on the client, so a client error is
/// recognised by these names, which gregor-client (like the Java client) puts in the message
/// of every error a broker's code caused: `orders: TOPIC_AUTHORIZATION_FAILED (29)`.
const KAFKA_AUTH_ERRORS: [&str; 6] = [
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "SASL_AUTHENTICATION_FAILED",
];

fn names_kafka_auth_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if KAFKA_AUTH_ERRORS.iter().any(|name| text.contains(name)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The error chain on one line: `outer: inner: innermost` (the dead-letter `error` header).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        next = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_data() {
        assert_eq!(Error::validation("x").class(), ErrorClass::Fatal);
        assert_eq!(Error::authorization("x").class(), ErrorClass::Fatal);
        assert_eq!(Error::retriable("db down").class(), ErrorClass::Retriable);
        assert_eq!(Error::fatal("bad").class(), ErrorClass::Fatal);
        let d = Error::Deserialization {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            message: "x".into(),
        };
        assert_eq!(d.class(), ErrorClass::Fatal);
        let exhausted = Error::RetriesExhausted {
            attempts: 3,
            reason: GaveUp::Attempts,
            source: Box::new(Error::Timeout {
                after: Duration::from_secs(1),
            }),
        };
        assert_eq!(exhausted.class(), ErrorClass::Retriable);
        assert!(matches!(exhausted.root(), Error::Timeout { .. }));
        assert_eq!(
            Error::CircuitOpen {
                retry_after: Duration::from_secs(2)
            }
            .retry_after(),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn boxed_gregor_errors_keep_their_class() {
        let boxed: BoxError = Box::new(Error::validation("no items"));
        assert_eq!(Error::from(boxed).class(), ErrorClass::Fatal);
        let other: BoxError = "socket closed".into();
        assert_eq!(Error::from(other).class(), ErrorClass::Retriable);
    }

    #[test]
    fn kafka_authorization_failures_are_fatal_not_retriable() {
        #[derive(Debug)]
        struct Wrapped(std::io::Error);
        impl fmt::Display for Wrapped {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("produce to the audit topic")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        // The name may sit anywhere in the chain.
        let denied: BoxError = Box::new(Wrapped(std::io::Error::other(
            "topic audit: TOPIC_AUTHORIZATION_FAILED (29)",
        )));
        let e = Error::from(denied);
        assert_eq!(e.class(), ErrorClass::Fatal);
        assert!(
            matches!(&e, Error::Authorization { message } if message.contains("topic audit")),
            "{e}"
        );
        let e = Error::from(BoxError::from("group g: GROUP_AUTHORIZATION_FAILED (30)"));
        assert!(!e.is_retriable());
        // A transient Kafka error stays retriable.
        let e = Error::from(BoxError::from("orders/0: NOT_LEADER_OR_FOLLOWER (6)"));
        assert!(e.is_retriable());
    }

    #[test]
    fn chain_joins_sources_once() {
        let e = Error::RetriesExhausted {
            attempts: 2,
            reason: GaveUp::Attempts,
            source: Box::new(Error::retriable("db down")),
        };
        let text = chain(&e);
        assert!(text.starts_with("gave up after 2 attempts"), "{text}");
        assert_eq!(text.matches("db down").count(), 1, "{text}");
    }
}
