//! The property table. Common keys live here; producer and consumer keys live in their own
//! sections (`producer_keys.rs`, `consumer_keys.rs`) so each part of the client owns its keys.

use super::ClientConfig;
use crate::error::Result;

#[path = "consumer_keys.rs"]
mod consumer_keys;
#[path = "producer_keys.rs"]
mod producer_keys;

/// What a property applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// Every client: connection, security, timeouts.
    Common,
    /// The producer.
    Producer,
    /// The consumer.
    Consumer,
}

/// The type of a property's value; values are checked (and normalised) when set.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Kind {
    /// Any string (may be empty).
    Str,
    /// A comma-separated list.
    List,
    /// `true` or `false` (any case).
    Bool,
    /// An integer in `[min, max]`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// One of these words (any case; stored in the case listed).
    Enum(&'static [&'static str]),
}

impl Kind {
    /// Checks `value`, returning it in canonical form or saying what is wrong.
    pub fn check(&self, value: &str) -> std::result::Result<String, String> {
        match self {
            Kind::Str => Ok(value.to_owned()),
            Kind::List => Ok(value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",")),
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "true" => Ok("true".into()),
                "false" => Ok("false".into()),
                _ => Err(format!("{value:?} is not true or false")),
            },
            Kind::Int { min, max } => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not an integer"))?;
                if n < *min || n > *max {
                    return Err(format!("{n} is outside {min}..={max}"));
                }
                Ok(n.to_string())
            }
            Kind::Enum(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(value))
                .map(|w| (*w).to_owned())
                .ok_or_else(|| format!("{value:?} is not one of {}", words.join(", "))),
        }
    }
}

/// Whether gregor does what the property asks.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Support {
    /// Honoured as Kafka documents it.
    Honoured,
    /// Some values cannot be honoured and are refused with `note` (e.g. `enable.idempotence=true`).
    Gap {
        /// Which values are refused.
        refuse: fn(&str) -> bool,
        /// Why, and what to do instead.
        note: &'static str,
    },
    /// Some values are accepted but behave differently; a warning says how.
    Warn {
        /// Which values warn.
        when: fn(&str) -> bool,
        /// What happens instead.
        note: &'static str,
    },
}

impl Support {
    /// The note for gaps and warnings; `None` when fully honoured.
    pub fn note(&self) -> Option<&'static str> {
        match self {
            Support::Honoured => None,
            Support::Gap { note, .. } | Support::Warn { note, .. } => Some(note),
        }
    }
}

impl std::fmt::Debug for Support {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Support::Honoured => f.write_str("Honoured"),
            Support::Gap { note, .. } => write!(f, "Gap({note})"),
            Support::Warn { note, .. } => write!(f, "Warn({note})"),
        }
    }
}

/// One known property.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Property {
    /// The Kafka name (`linger.ms`).
    pub name: &'static str,
    /// Other accepted names (librdkafka's, e.g. `queue.buffering.max.ms` for `linger.ms`).
    pub aliases: &'static [&'static str],
    /// Default, if any (in canonical form).
    pub default: Option<&'static str>,
    /// Value type.
    pub kind: Kind,
    /// Who reads it.
    pub scope: Scope,
    /// Whether gregor honours it.
    pub support: Support,
    /// Never printed (passwords, keys).
    pub secret: bool,
    /// What it means.
    pub doc: &'static str,
}

impl Property {
    pub(crate) const fn new(
        name: &'static str,
        scope: Scope,
        kind: Kind,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Property {
        Property {
            name,
            aliases: &[],
            default,
            kind,
            scope,
            support: Support::Honoured,
            secret: false,
            doc,
        }
    }

    pub(crate) const fn aliases(mut self, aliases: &'static [&'static str]) -> Property {
        self.aliases = aliases;
        self
    }

    pub(crate) const fn support(mut self, support: Support) -> Property {
        self.support = support;
        self
    }

    pub(crate) const fn secret(mut self) -> Property {
        self.secret = true;
        self
    }
}

pub(crate) const MS_MAX: i64 = i32::MAX as i64;

const fn ms(min: i64) -> Kind {
    Kind::Int { min, max: MS_MAX }
}

const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

use Scope::Common;

const COMMON: &[Property] = &[
    Property::new(
        "bootstrap.servers",
        Common,
        Kind::List,
        None,
        "Comma-separated host:port of brokers to start from; the rest of the cluster is discovered.",
    )
    .aliases(&["metadata.broker.list"]),
    Property::new(
        "client.id",
        Common,
        Kind::Str,
        Some("gregor"),
        "Name sent with every request, for broker logs and quotas.",
    ),
    Property::new(
        "request.timeout.ms",
        Common,
        ms(1),
        Some("30000"),
        "How long to wait for a broker's response to one request before failing it.",
    )
    .aliases(&["socket.timeout.ms"]),
    Property::new(
        "socket.connection.setup.timeout.ms",
        Common,
        ms(1),
        Some("10000"),
        "How long to wait for a TCP (and TLS) connection to a broker.",
    ),
    Property::new(
        "metadata.max.age.ms",
        Common,
        ms(0),
        Some("300000"),
        "Refresh cluster metadata at least this often, even without errors.",
    ),
    Property::new(
        "retry.backoff.ms",
        Common,
        ms(0),
        Some("100"),
        "First wait before retrying a failed request; doubles up to retry.backoff.max.ms.",
    ),
    Property::new(
        "retry.backoff.max.ms",
        Common,
        ms(0),
        Some("1000"),
        "Longest wait between retries.",
    ),
    Property::new(
        "security.protocol",
        Common,
        Kind::Enum(SECURITY_PROTOCOLS),
        Some("PLAINTEXT"),
        "How to talk to brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (SASL without TLS) or SASL_SSL (SASL over TLS). Every connection of the client (produce, fetch, group coordinator, admin) uses it.",
    ),
    Property::new(
        "sasl.mechanism",
        Common,
        Kind::Enum(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
        Some("PLAIN"),
        "SASL mechanism with SASL_PLAINTEXT or SASL_SSL (GSSAPI and OAUTHBEARER are not supported).",
    )
    .aliases(&["sasl.mechanisms"]),
    Property::new(
        "sasl.username",
        Common,
        Kind::Str,
        None,
        "SASL user name; required with SASL_PLAINTEXT and SASL_SSL.",
    ),
    Property::new(
        "sasl.password",
        Common,
        Kind::Str,
        None,
        "SASL password; required with SASL. Never logged, printed or put in an error.",
    )
    .secret(),
    Property::new(
        "ssl.ca.location",
        Common,
        Kind::Str,
        None,
        "PEM file of the CA certificates brokers' certificates must chain to; the system's CA certificates when unset.",
    ),
    Property::new(
        "ssl.certificate.location",
        Common,
        Kind::Str,
        None,
        "PEM file of the client certificate (and its chain) for mutual TLS; needs ssl.key.location.",
    ),
    Property::new(
        "ssl.key.location",
        Common,
        Kind::Str,
        None,
        "PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted). Its contents are never logged.",
    ),
    Property::new(
        "ssl.key.password",
        Common,
        Kind::Str,
        None,
        "Password of an encrypted private key. Never logged or printed.",
    )
    .secret()
    .support(Support::Gap {
        refuse: |v| !v.is_empty(),
        note: "encrypted private keys are not supported; decrypt the key file (openssl pkey) instead",
    }),
    Property::new(
        "ssl.endpoint.identification.algorithm",
        Common,
        Kind::Enum(&["https", "none", ""]),
        Some("https"),
        "https: the broker's certificate must name the host (or IP) connected to. Empty (Kafka's way) or none: any host name is accepted, the chain is still verified; unsafe (any certificate of the CA can pose as any broker).",
    ),
];

/// Every property: common, producer, consumer.
pub(crate) fn all() -> impl Iterator<Item = &'static Property> {
    COMMON
        .iter()
        .chain(producer_keys::PRODUCER)
        .chain(consumer_keys::CONSUMER)
}

/// Cross-key checks of the producer and consumer sections.
pub(crate) fn validate_sections(config: &ClientConfig) -> Result<()> {
    producer_keys::validate(config)?;
    consumer_keys::validate(config)
}
