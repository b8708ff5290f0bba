//! Which codec serves which topic: exact names, prefixes and `*` patterns, configured in code
//! or from a YAML file, so a service swaps JSON for Avro on one topic without touching its
//! handlers.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::avro::{AvroCodec, AvroConfig, SubjectNameStrategy};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::json::JsonCodec;
use crate::registry::{HttpRegistry, RegistryClient, RetryPolicy};

/// A codec shared between topics.
pub type SharedCodec<T> = Arc<dyn Codec<T>>;

/// Codecs by topic. Lookup order: exact name, then the longest matching prefix, then the first
/// matching pattern (in the order added), then the default.
///
/// ```
/// use std::sync::Arc;
/// use gregor_codec::{CodecRegistry, JsonCodec};
///
/// let json = Arc::new(JsonCodec::new());
/// let codecs: CodecRegistry<serde_json::Value> = CodecRegistry::new()
///     .exact("orders", json.clone())
///     .prefix("audit.", json.clone())
///     .pattern("*.dlq", json);
/// assert_eq!(codecs.codec_for("audit.logins").unwrap().name(), "json");
/// assert!(codecs.codec_for("payments").is_err());
/// ```
pub struct CodecRegistry<T> {
    exact: std::collections::HashMap<String, SharedCodec<T>>,
    prefixes: Vec<(String, SharedCodec<T>)>,
    patterns: Vec<(String, SharedCodec<T>)>,
    default: Option<SharedCodec<T>>,
}

impl<T> Default for CodecRegistry<T> {
    fn default() -> Self {
        CodecRegistry {
            exact: Default::default(),
            prefixes: Vec::new(),
            patterns: Vec::new(),
            default: None,
        }
    }
}

impl<T> std::fmt::Debug for CodecRegistry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[(String, SharedCodec<T>)]| {
            v.iter()
                .map(|(k, c)| format!("{k}={}", c.name()))
                .collect::<Vec<_>>()
        };
        f.debug_struct("CodecRegistry")
            .field(
                "exact",
                &self
                    .exact
                    .iter()
                    .map(|(k, c)| format!("{k}={}", c.name()))
                    .collect::<Vec<_>>(),
            )
            .field("prefixes", &names(&self.prefixes))
            .field("patterns", &names(&self.patterns))
            .field(
                "default",
                &self.default.as_ref().map(|c| c.name().to_owned()),
            )
            .finish()
    }
}

impl<T> CodecRegistry<T> {
    /// No codecs.
    pub fn new() -> Self {
        Self::default()
    }

    /// `codec` serves exactly `topic`.
    pub fn exact(mut self, topic: impl Into<String>, codec: SharedCodec<T>) -> Self {
        self.exact.insert(topic.into(), codec);
        self
    }

    /// `codec` serves topics starting with `prefix` (the longest matching prefix wins).
    pub fn prefix(mut self, prefix: impl Into<String>, codec: SharedCodec<T>) -> Self {
        self.prefixes.push((prefix.into(), codec));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        self
    }

    /// `codec` serves topics matching `pattern`, where `*` matches any run of characters
    /// (`*.dlq`, `orders.*.v2`).
    pub fn pattern(mut self, pattern: impl Into<String>, codec: SharedCodec<T>) -> Self {
        self.patterns.push((pattern.into(), codec));
        self
    }

    /// `codec` serves every topic nothing else matches.
    pub fn default_codec(mut self, codec: SharedCodec<T>) -> Self {
        self.default = Some(codec);
        self
    }

    /// The codec for `topic`, or [`Error::NoCodec`].
    pub fn codec_for(&self, topic: &str) -> Result<&SharedCodec<T>> {
        if let Some(c) = self.exact.get(topic) {
            return Ok(c);
        }
        if let Some((_, c)) = self
            .prefixes
            .iter()
            .find(|(p, _)| topic.starts_with(p.as_str()))
        {
            return Ok(c);
        }
        if let Some((_, c)) = self.patterns.iter().find(|(p, _)| glob(p, topic)) {
            return Ok(c);
        }
        self.default.as_ref().ok_or_else(|| Error::NoCodec {
            topic: topic.to_owned(),
        })
    }

    /// Prepares the codec of each topic (schema registration and lookups), so a refused schema
    /// stops the service at startup.
    pub async fn prepare(&self, topics: &[&str]) -> Result<()> {
        for topic in topics {
            let codec = self.codec_for(topic)?;
            codec.prepare(std::slice::from_ref(topic)).await?;
        }
        Ok(())
    }
}

/// `*` matches any run (also empty); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The codec configuration file (YAML).
///
/// ```yaml
/// schema_registry:
///   url: http://127.0.0.1:8081        # Confluent API base
///   request_timeout_ms: 5000          # optional
///   max_attempts: 4                   # optional
///   deadline_ms: 15000                # optional
/// default: { codec: json }
/// topics:
///   - topic: commerce.orders.created  # exact name
///     codec: avro
///     subject_strategy: topic_name    # topic_name | record_name | topic_record_name
///     auto_register: true
///     use_latest_version: false
///   - prefix: audit.
///     codec: json
///   - pattern: "*.dlq"
///     codec: bytes                    # a custom kind, resolved by from_config_with
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecConfig {
    /// The registry for Avro codecs.
    #[serde(default)]
    pub schema_registry: Option<RegistryConfig>,
    /// Codec for topics no rule matches.
    #[serde(default)]
    pub default: Option<CodecSpec>,
    /// Rules, each with exactly one of `topic`, `prefix`, `pattern`.
    #[serde(default)]
    pub topics: Vec<TopicRule>,
}

/// Where the schema registry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Confluent API base URL.
    pub url: String,
    /// Timeout of one request (default 5000).
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// Attempts per call (default 4).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Total time per call, retries included (default 15000).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

impl RegistryConfig {
    /// The retry policy these settings describe.
    pub fn policy(&self) -> RetryPolicy {
        let mut p = RetryPolicy::default();
        if let Some(ms) = self.request_timeout_ms {
            p.request_timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = self.max_attempts {
            p.max_attempts = n.max(1);
        }
        if let Some(ms) = self.deadline_ms {
            p.deadline = std::time::Duration::from_millis(ms);
        }
        p
    }
}

/// One rule: which topics, and the codec for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRule {
    /// An exact topic name.
    #[serde(default)]
    pub topic: Option<String>,
    /// A topic name prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A `*` pattern.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The codec.
    #[serde(flatten)]
    pub codec: CodecSpec,
}

/// A codec and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecSpec {
    /// `json`, `avro`, or a custom kind.
    pub codec: String,
    /// Avro: subject naming (default `topic_name`).
    #[serde(default)]
    pub subject_strategy: Option<SubjectNameStrategy>,
    /// Avro: register the schema (default true).
    #[serde(default)]
    pub auto_register: Option<bool>,
    /// Avro: write with the subject's latest version (default false).
    #[serde(default)]
    pub use_latest_version: Option<bool>,
    /// Avro: the `.avsc` file; without it the schema given to `from_config` is used.
    #[serde(default)]
    pub schema_file: Option<String>,
}

impl CodecSpec {
    fn avro_config(&self) -> AvroConfig {
        let d = AvroConfig::default();
        AvroConfig {
            subject_strategy: self.subject_strategy.unwrap_or(d.subject_strategy),
            auto_register: self.auto_register.unwrap_or(d.auto_register),
            use_latest_version: self.use_latest_version.unwrap_or(d.use_latest_version),
        }
    }
}

impl CodecConfig {
    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<CodecConfig> {
        serde_yaml_ng::from_str(text).map_err(|e| Error::Config {
            key: e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_else(|| "codec config".into()),
            reason: e.to_string(),
        })
    }

    /// Reads a YAML file.
    pub fn from_file(path: &Path) -> Result<CodecConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            key: path.display().to_string(),
            reason: e.to_string(),
        })?;
        CodecConfig::from_yaml(&text).map_err(|e| match e {
            Error::Config { key, reason } => Error::Config {
                key: format!("{} {key}", path.display()),
                reason,
            },
            other => other,
        })
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> CodecRegistry<T> {
    /// Builds the registry from a configuration: `json` and `avro` codecs (Avro with
    /// `avro_schema` unless a rule names a `schema_file`). Any other kind is an error.
    pub fn from_config(config: &CodecConfig, avro_schema: Option<&str>) -> Result<Self> {
        Self::from_config_with(config, avro_schema, |_| None)
    }

    /// The same, asking `custom` first for every rule's codec (return `None` to fall back to
    /// the built-in `json`/`avro`), e.g. `string` or `bytes` for `T = String`/`Vec<u8>`.
    pub fn from_config_with(
        config: &CodecConfig,
        avro_schema: Option<&str>,
        custom: impl Fn(&CodecSpec) -> Option<SharedCodec<T>>,
    ) -> Result<Self> {
        let mut client: Option<Arc<dyn RegistryClient>> = None;
        let mut build = |spec: &CodecSpec, key: String| -> Result<SharedCodec<T>> {
            if let Some(codec) = custom(spec) {
                return Ok(codec);
            }
            match spec.codec.as_str() {
                "json" => Ok(Arc::new(JsonCodec::new())),
                "avro" => {
                    let registry =
                        match &client {
                            Some(c) => Arc::clone(c),
                            None => {
                                let cfg = config.schema_registry.as_ref().ok_or_else(|| {
                                    Error::Config {
                                        key: "schema_registry.url".into(),
                                        reason: format!(
                                            "{key} is avro, which needs a schema registry"
                                        ),
                                    }
                                })?;
                                let c: Arc<dyn RegistryClient> =
                                    Arc::new(HttpRegistry::with_policy(&cfg.url, cfg.policy())?);
                                client = Some(Arc::clone(&c));
                                c
                            }
                        };
                    let text = match &spec.schema_file {
                        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::Config {
                            key: format!("{key}.schema_file"),
                            reason: format!("{path}: {e}"),
                        })?,
                        None => avro_schema
                            .ok_or_else(|| Error::Config {
                                key: format!("{key}.schema_file"),
                                reason: "avro needs a schema: set schema_file or pass one to from_config".into(),
                            })?
                            .to_owned(),
                    };
                    Ok(Arc::new(AvroCodec::<T>::new(
                        registry,
                        &text,
                        spec.avro_config(),
                    )?))
                }
                other => Err(Error::Config {
                    key: format!("{key}.codec"),
                    reason: format!("unknown codec {other:?} (built in: json, avro)"),
                }),
            }
        };
        let mut out = CodecRegistry::new();
        if let Some(spec) = &config.default {
            out = out.default_codec(build(spec, "default".into())?);
        }
        for (i, rule) in config.topics.iter().enumerate() {
            let key = format!("topics[{i}]");
            let codec = build(&rule.codec, key.clone())?;
            out = match (&rule.topic, &rule.prefix, &rule.pattern) {
                (Some(t), None, None) => out.exact(t.clone(), codec),
                (None, Some(p), None) => out.prefix(p.clone(), codec),
                (None, None, Some(p)) => out.pattern(p.clone(), codec),
                _ => {
                    return Err(Error::Config {
                        key,
                        reason: "set exactly one of topic, prefix, pattern".into(),
                    });
                }
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.dlq", "orders.dlq"));
        assert!(glob("*.dlq", ".dlq"));
        assert!(!glob("*.dlq", "orders.dlq.x"));
        assert!(glob("orders.*.v2", "orders.eu.v2"));
        assert!(!glob("orders.*.v2", "orders.v2"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(glob("*", ""));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn config_rules_and_errors() {
        let cfg = CodecConfig::from_yaml(
            "default: { codec: json }\ntopics:\n  - prefix: audit.\n    codec: json\n  - pattern: '*.dlq'\n    codec: raw\n",
        )
        .unwrap();
        let err = CodecRegistry::<serde_json::Value>::from_config(&cfg, None).unwrap_err();
        assert!(err.to_string().contains("topics[1].codec"), "{err}");
        let reg = CodecRegistry::<serde_json::Value>::from_config_with(&cfg, None, |spec| {
            (spec.codec == "raw")
                .then(|| Arc::new(JsonCodec::new().content_type_header(true)) as SharedCodec<_>)
        })
        .unwrap();
        assert_eq!(reg.codec_for("anything").unwrap().name(), "json");

        let avro_without_registry =
            CodecConfig::from_yaml("topics:\n  - topic: o\n    codec: avro\n").unwrap();
        let err =
            CodecRegistry::<serde_json::Value>::from_config(&avro_without_registry, Some("{}"))
                .unwrap_err();
        assert!(err.to_string().contains("schema_registry.url"), "{err}");

        let two_selectors =
            CodecConfig::from_yaml("topics:\n  - topic: o\n    prefix: p\n    codec: json\n")
                .unwrap();
        assert!(CodecRegistry::<serde_json::Value>::from_config(&two_selectors, None).is_err());
        // A misspelt selector leaves the rule without one: refused when the registry is built.
        let typo = CodecConfig::from_yaml("topics:\n  - topik: o\n    codec: json\n").unwrap();
        let err = CodecRegistry::<serde_json::Value>::from_config(&typo, None).unwrap_err();
        assert!(err.to_string().contains("topics[0]"), "{err}");
    }
}
