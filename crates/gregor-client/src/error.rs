//! The client's one error type, and Kafka's error codes with their retriability.

use std::fmt;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// A Kafka protocol error code as returned by a broker (`NOT_LEADER_OR_FOLLOWER`, ...).
///
/// Retriability comes from Kafka's own error table (the `RetriableException` subclasses in the
/// Java client): [`KafkaCode::is_retriable`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// 0: no error.
    pub const NONE: KafkaCode = KafkaCode(0);
    /// 1
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    /// 3
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    /// 5
    pub const LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(5);
    /// 6
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    /// 7
    pub const REQUEST_TIMED_OUT: KafkaCode = KafkaCode(7);
    /// 10
    pub const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);
    /// 14
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    /// 15
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    /// 16
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    /// 19
    pub const NOT_ENOUGH_REPLICAS: KafkaCode = KafkaCode(19);
    /// 22
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    /// 25
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    /// 27
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    /// 29
    pub const TOPIC_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(29);
    /// 30
    pub const GROUP_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(30);
    /// 31
    pub const CLUSTER_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(31);
    /// 35
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    /// 36
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    /// 37
    pub const INVALID_PARTITIONS: KafkaCode = KafkaCode(37);
    /// 53
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(53);
    /// 58
    pub const SASL_AUTHENTICATION_FAILED: KafkaCode = KafkaCode(58);
    /// 69
    pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
    /// 79
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    /// 82
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);

    fn known(self) -> Option<ResponseError> {
        ResponseError::try_from_code(self.0).filter(|e| !matches!(e, ResponseError::Unknown(_)))
    }

    /// Kafka's name for the code, as the Java client prints it (`NOT_LEADER_OR_FOLLOWER`).
    pub fn name(self) -> String {
        match self.known() {
            None if self.0 == 0 => "NONE".to_owned(),
            None => format!("UNKNOWN_CODE_{}", self.0),
            Some(e) => upper_snake(&e.to_string()),
        }
    }

    /// Whether retrying the same request later may succeed (Kafka's own classification).
    pub fn is_retriable(self) -> bool {
        self.known().is_some_and(|e| e.is_retriable())
    }

    /// Authorization and authentication failures: never retried, never hidden.
    pub fn is_auth(self) -> bool {
        matches!(self.0, 29..=31 | 53 | 58)
    }

    /// `Some(code)` unless the code is 0 (no error).
    pub fn from_code(code: i16) -> Option<KafkaCode> {
        (code != 0).then_some(KafkaCode(code))
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl fmt::Debug for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// What a failed operation was about: the topic, partition, group or broker it concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// Topic, if the operation concerned one.
    pub topic: Option<String>,
    /// Partition, if the operation concerned one.
    pub partition: Option<i32>,
    /// Offset, if the operation concerned one.
    pub offset: Option<i64>,
    /// Consumer group, if any.
    pub group: Option<String>,
    /// Broker address or id, if any.
    pub broker: Option<String>,
}

impl Context {
    /// Context naming a topic.
    pub fn topic(topic: impl Into<String>) -> Context {
        Context {
            topic: Some(topic.into()),
            ..Context::default()
        }
    }

    /// Context naming a topic and partition.
    pub fn partition(topic: impl Into<String>, partition: i32) -> Context {
        Context {
            topic: Some(topic.into()),
            partition: Some(partition),
            ..Context::default()
        }
    }

    /// Context naming a consumer group.
    pub fn group(group: impl Into<String>) -> Context {
        Context {
            group: Some(group.into()),
            ..Context::default()
        }
    }

    /// Context naming a broker.
    pub fn broker(broker: impl Into<String>) -> Context {
        Context {
            broker: Some(broker.into()),
            ..Context::default()
        }
    }

    /// Adds an offset.
    pub fn with_offset(mut self, offset: i64) -> Context {
        self.offset = Some(offset);
        self
    }

    /// Adds a group.
    pub fn with_group(mut self, group: impl Into<String>) -> Context {
        self.group = Some(group.into());
        self
    }

    fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.topic {
            match self.partition {
                Some(p) => parts.push(format!("{t}/{p}")),
                None => parts.push(format!("topic {t}")),
            }
        } else if let Some(p) = self.partition {
            parts.push(format!("partition {p}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset {o}"));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group {g}"));
        }
        if let Some(b) = &self.broker {
            parts.push(format!("broker {b}"));
        }
        f.write_str(&parts.join(", "))
    }
}

fn ctx_prefix(ctx: &Context) -> String {
    if ctx.is_empty() {
        String::new()
    } else {
        format!("{ctx}: ")
    }
}

/// Why a TLS connection to a broker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate does not chain to a CA of `ssl.ca.location` (or of the system,
    /// when that is unset).
    UntrustedCertificate,
    /// The certificate is trusted but does not name the host connected to (its subject
    /// alternative names); `ssl.endpoint.identification.algorithm` decides whether that counts.
    HostNameMismatch,
    /// The certificate is trusted but unusable otherwise: expired, not yet valid, revoked, or
    /// not meant for a server.
    InvalidCertificate,
    /// The broker ended the handshake with an alert (for example, it requires a client
    /// certificate or does not trust ours).
    RefusedByBroker,
    /// Any other handshake failure (no common protocol version or cipher suite, I/O).
    Handshake,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UntrustedCertificate => {
                "its certificate is not signed by a trusted CA (check ssl.ca.location)"
            }
            TlsFailure::HostNameMismatch => {
                "its certificate does not name the host connected to (connect with a name or IP of the certificate's subject alternative names)"
            }
            TlsFailure::InvalidCertificate => "its certificate is not valid",
            TlsFailure::RefusedByBroker => {
                "the broker refused the handshake (does it require a client certificate? check ssl.certificate.location and ssl.key.location)"
            }
            TlsFailure::Handshake => "handshake failed",
        })
    }
}

/// Everything gregor-client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration property is unknown, malformed, or not supported in this combination.
    #[error("config {key}: {message}")]
    Config {
        /// The Kafka property name (`linger.ms`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },

    /// A broker answered with a Kafka error code.
    #[error("{}{code}{}", ctx_prefix(.context), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The error code.
        code: KafkaCode,
        /// What the request was about.
        context: Box<Context>,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },

    /// Could not connect to, or lost the connection to, a broker.
    #[error("connection to {broker}: {message}")]
    Connection {
        /// `host:port` (or every bootstrap server tried).
        broker: String,
        /// What happened.
        message: String,
    },

    /// An operation did not complete in time.
    #[error("{}{what} timed out after {after:?}", ctx_prefix(.context))]
    Timeout {
        /// What was being done.
        what: String,
        /// What it was about.
        context: Box<Context>,
        /// The limit that was hit.
        after: Duration,
    },

    /// A broker sent bytes we could not decode, or a response that breaks the protocol.
    #[error("protocol error from {broker}: {message}")]
    Protocol {
        /// Who sent it.
        broker: String,
        /// What was wrong.
        message: String,
    },

    /// The broker does not support a request version we can speak.
    #[error("broker {broker} does not support {api} in versions {ours}")]
    UnsupportedVersion {
        /// Broker address.
        broker: String,
        /// API name.
        api: String,
        /// Versions we can speak.
        ours: String,
    },

    /// The client was closed.
    #[error("the client is closed")]
    Closed,

    /// Record data that cannot be decoded (a CRC mismatch, a broken length, an unknown codec).
    /// The consumer's corrupt-record policy decides whether it stops there or steps over it.
    #[error("{topic}/{partition}, offset {offset}: corrupt record data: {message}")]
    CorruptRecord {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The first offset affected.
        offset: i64,
        /// Where reading resumes if the data is stepped over (`None`: its extent is unknown).
        resume_at: Option<i64>,
        /// What is wrong.
        message: String,
    },

    /// The consumer has no offset to start a partition from (`auto.offset.reset=none` and
    /// nothing committed, or the committed offset is out of range).
    #[error("{topic}/{partition}: no offset to start from: {reason}")]
    NoOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why, and what to do.
        reason: String,
    },

    /// A TLS connection to a broker could not be set up: its certificate is not trusted, does
    /// not name the address connected to, or the handshake failed. Not retriable: the same
    /// configuration meets the same certificate.
    #[error("TLS with broker {broker} failed: {failure}: {message}")]
    Tls {
        /// `host:port` connected to.
        broker: String,
        /// Why, as a category.
        failure: TlsFailure,
        /// rustls' description of what happened.
        message: String,
    },

    /// SASL authentication was refused (a wrong user name or password, a mechanism the broker
    /// does not enable) or could not complete. Never contains the password. Not retriable.
    #[error(
        "SASL {mechanism} authentication as {username:?} with broker {broker} failed: {message}"
    )]
    Authentication {
        /// `host:port` connected to.
        broker: String,
        /// `sasl.mechanism`.
        mechanism: String,
        /// `sasl.username`.
        username: String,
        /// What the broker (or the SASL exchange) said.
        message: String,
    },

    /// An error from rskafka (the data path) that has no Kafka error code.
    #[error("{}{message}", ctx_prefix(.context))]
    Client {
        /// What it was about.
        context: Box<Context>,
        /// rskafka's message.
        message: String,
        /// Whether retrying may help (I/O and connection errors: yes).
        retriable: bool,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed. Authorization, authentication and
    /// configuration errors never are.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Connection { .. } | Error::Timeout { .. } => true,
            Error::Client { retriable, .. } => *retriable,
            Error::Config { .. }
            | Error::Tls { .. }
            | Error::Authentication { .. }
            | Error::Protocol { .. }
            | Error::UnsupportedVersion { .. }
            | Error::CorruptRecord { .. }
            | Error::NoOffset { .. }
            | Error::Closed => false,
        }
    }

    /// The Kafka error code, if a broker returned one.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this is an authorization or authentication failure.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Authentication { .. }) || self.code().is_some_and(KafkaCode::is_auth)
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn kafka(code: KafkaCode, context: Context, message: Option<String>) -> Error {
        Error::Kafka {
            code,
            context: Box::new(context),
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// `Err(Error::Kafka)` when `code` is not 0.
    pub(crate) fn check(code: i16, context: impl FnOnce() -> Context) -> Result<()> {
        match KafkaCode::from_code(code) {
            None => Ok(()),
            Some(code) => Err(Error::kafka(code, context(), None)),
        }
    }

    /// Maps an rskafka error, keeping its Kafka error code when it has one.
    #[allow(
        dead_code,
        reason = "the producer and consumer (issues 4 and 5) map rskafka errors with it"
    )]
    pub(crate) fn from_rskafka(e: rskafka::client::error::Error, context: Context) -> Error {
        use rskafka::client::error::Error as E;
        let context = Box::new(context);
        match e {
            E::ServerError {
                protocol_error,
                error_message,
                ..
            } => Error::Kafka {
                code: KafkaCode(rskafka_code(&protocol_error)),
                context,
                message: error_message.filter(|m| !m.is_empty()),
            },
            E::Connection(c) => Error::Client {
                context,
                message: format!("connection: {c}"),
                retriable: true,
            },
            E::Request(r) => Error::Client {
                context,
                message: format!("request: {r}"),
                retriable: true,
            },
            E::RetryFailed(r) => Error::Client {
                context,
                message: format!("gave up retrying: {r}"),
                retriable: false,
            },
            other => Error::Client {
                context,
                message: other.to_string(),
                retriable: false,
            },
        }
    }
}

/// rskafka's `ProtocolError` carries the numeric code; recover it for our table.
fn rskafka_code(e: &rskafka::client::error::ProtocolError) -> i16 {
    use rskafka::client::error::ProtocolError as P;
    match e {
        P::Unknown(code) => *code,
        // Every named variant is Kafka's code under another name; its Debug form is the
        // CamelCase name, which kafka-protocol's table maps back to the number.
        named => code_from_name(&format!("{named:?}")).unwrap_or(-1),
    }
}

fn code_from_name(name: &str) -> Option<i16> {
    (-1..=200_i16).find(|&c| {
        ResponseError::try_from_code(c)
            .filter(|e| !matches!(e, ResponseError::Unknown(_)))
            .is_some_and(|e| e.to_string() == name)
    })
}

/// Result with gregor-client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_java_names_and_retriability() {
        assert_eq!(KafkaCode(6).name(), "NOT_LEADER_OR_FOLLOWER");
        assert!(KafkaCode(6).is_retriable());
        assert_eq!(KafkaCode(29).name(), "TOPIC_AUTHORIZATION_FAILED");
        assert!(!KafkaCode(29).is_retriable());
        assert!(KafkaCode(29).is_auth());
        assert!(KafkaCode::NOT_ENOUGH_REPLICAS.is_retriable());
        assert!(!KafkaCode::MESSAGE_TOO_LARGE.is_retriable());
        assert_eq!(KafkaCode(0).name(), "NONE");
        assert_eq!(KafkaCode(999).name(), "UNKNOWN_CODE_999");
        assert!(!KafkaCode(999).is_retriable());
        assert_eq!(KafkaCode(-1).name(), "UNKNOWN_SERVER_ERROR");
    }

    #[test]
    fn rskafka_errors_keep_their_code() {
        use rskafka::client::error::ProtocolError as P;
        assert_eq!(rskafka_code(&P::NotLeaderOrFollower), 6);
        assert_eq!(rskafka_code(&P::TopicAuthorizationFailed), 29);
        assert_eq!(rskafka_code(&P::UnknownTopicOrPartition), 3);
        assert_eq!(rskafka_code(&P::Unknown(4242)), 4242);
    }

    #[test]
    fn messages_name_what_failed() {
        let e = Error::kafka(
            KafkaCode::NOT_LEADER_OR_FOLLOWER,
            Context::partition("orders", 3).with_offset(17),
            Some("moved".into()),
        );
        assert_eq!(
            e.to_string(),
            "orders/3, offset 17: NOT_LEADER_OR_FOLLOWER (6): moved"
        );
        assert!(e.is_retriable());
        let e = Error::config("lingr.ms", "unknown property; did you mean `linger.ms`?");
        assert_eq!(
            e.to_string(),
            "config lingr.ms: unknown property; did you mean `linger.ms`?"
        );
        assert!(!e.is_retriable());
    }
}
