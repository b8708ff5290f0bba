//! `ClientConfig`: Kafka property names, from code, a map, the environment or a file.
//!
//! ```text
//! set("linger.ms", "5") ─┐
//! from_map / from_env ───┼─▶ known key? ─▶ value parses? ─▶ honoured? ─▶ stored
//! from_file (.properties)┘     │ no: error naming the nearest known key
//!                              └ accepted-but-not-honoured values: error or warning, never silence
//! ```
//!
//! Every key lives in one table ([`properties`]) with its default, meaning and whether gregor
//! honours it; docs/configuration.md is checked against that table.

mod keys;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

pub use keys::{Kind, Property, Scope, Support};

/// The properties gregor knows, in documentation order.
pub fn properties() -> impl Iterator<Item = &'static Property> {
    keys::all()
}

fn lookup(name: &str) -> Option<&'static Property> {
    keys::all().find(|p| p.name == name || p.aliases.contains(&name))
}

/// Environment variables with the `KAFKA_` prefix that belong to Kafka's scripts and JVM, not to
/// a client: `from_env` skips them instead of calling them unknown properties.
const ENV_NOT_CLIENT: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_HOME",
    "KAFKA_DEBUG",
    "KAFKA_VERSION",
];

/// Client configuration with Kafka's property names (`bootstrap.servers`, `linger.ms`,
/// `group.id`, ...), shared by [`crate::Admin`] and the producer and consumer.
///
/// Unknown keys are errors that name the nearest known key; values are checked when set; a
/// value gregor accepts but cannot honour is refused or recorded as a warning
/// ([`ClientConfig::warnings`]), never silently ignored. Secrets (`sasl.password`, ...) are
/// redacted from `Debug`.
///
/// ```
/// use gregor_client::ClientConfig;
///
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("client.id", "orders")?;
/// assert_eq!(config.bootstrap_servers()?, vec!["127.0.0.1:9092".to_string()]);
///
/// let typo = ClientConfig::new().set("bootstrap.server", "x:9092").unwrap_err();
/// assert!(typo.to_string().contains("did you mean `bootstrap.servers`"));
/// # Ok::<(), gregor_client::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    values: BTreeMap<&'static str, String>,
    warnings: Vec<String>,
}

impl ClientConfig {
    /// An empty configuration: every property at its default.
    pub fn new() -> ClientConfig {
        ClientConfig::default()
    }

    /// Sets `key` (a Kafka property name or a known alias) to `value`, checking both.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Result<ClientConfig> {
        self.insert(key, value.into())?;
        Ok(self)
    }

    /// Sets `key` in place; see [`ClientConfig::set`].
    pub fn insert(&mut self, key: &str, value: String) -> Result<()> {
        let key = key.trim();
        let prop = lookup(key).ok_or_else(|| unknown_key(key))?;
        let value = prop
            .kind
            .check(value.trim())
            .map_err(|m| Error::config(prop.name, m))?;
        match prop.support {
            Support::Honoured => {}
            Support::Gap { refuse, note } => {
                if refuse(&value) {
                    let shown = if prop.secret {
                        "this value".to_owned()
                    } else {
                        format!("{value:?}")
                    };
                    return Err(Error::config(
                        prop.name,
                        format!("{shown} cannot be honoured: {note}"),
                    ));
                }
            }
            Support::Warn { when, note } => {
                if when(&value) {
                    self.warnings.retain(|w| !w.starts_with(prop.name));
                    self.warnings
                        .push(format!("{} = {value:?} is not honoured: {note}", prop.name));
                }
            }
        }
        self.values.insert(prop.name, value);
        Ok(())
    }

    /// Builds from `(key, value)` pairs; the first bad pair is the error.
    pub fn from_map<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<ClientConfig>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut config = ClientConfig::new();
        for (k, v) in pairs {
            config.insert(k.as_ref(), v.into())?;
        }
        Ok(config)
    }

    /// Adds every `KAFKA_*` variable of the process environment: `KAFKA_BOOTSTRAP_SERVERS` is
    /// `bootstrap.servers`, `KAFKA_SASL_PASSWORD` is `sasl.password` (lower case, `_` becomes
    /// `.`). Variables of Kafka's scripts (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, ...) are skipped.
    pub fn with_env(self) -> Result<ClientConfig> {
        self.with_vars(std::env::vars())
    }

    /// Like [`ClientConfig::with_env`], from the given variables (for tests and embedding).
    pub fn with_vars(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ClientConfig> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("KAFKA_") else {
                continue;
            };
            if ENV_NOT_CLIENT.contains(&name.as_str()) || rest.is_empty() {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace('_', ".");
            self.insert(&key, value).map_err(|e| match e {
                Error::Config { key, message } => {
                    Error::config(key, format!("from environment variable {name}: {message}"))
                }
                other => other,
            })?;
        }
        Ok(self)
    }

    /// Adds the properties of a Java-style `.properties` file (`key=value` or `key: value`,
    /// `#` and `!` comments). Errors name the file and line.
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Result<ClientConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                format!("cannot read config file: {e}"),
            )
        })?;
        for (key, value, line) in parse_properties(&text)
            .map_err(|(line, m)| Error::config(format!("{}:{line}", path.display()), m))?
        {
            self.insert(&key, value).map_err(|e| match e {
                Error::Config { key, message } => {
                    Error::config(key, format!("{}:{line}: {message}", path.display()))
                }
                other => other,
            })?;
        }
        Ok(self)
    }

    /// The value of `key` as set, or its default; `None` if neither exists.
    /// Unknown keys are `None` (use [`ClientConfig::set`] to get the suggestion).
    pub fn get(&self, key: &str) -> Option<&str> {
        let prop = lookup(key)?;
        self.values
            .get(prop.name)
            .map(String::as_str)
            .or(prop.default)
    }

    /// Whether `key` was set explicitly (not left at its default).
    pub fn is_set(&self, key: &str) -> bool {
        lookup(key).is_some_and(|p| self.values.contains_key(p.name))
    }

    /// Explicitly set properties, secrets redacted: for logs and `--print-config`.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        self.values
            .iter()
            .map(|(k, v)| {
                let secret = lookup(k).is_some_and(|p| p.secret);
                (
                    *k,
                    if secret {
                        "[redacted]".to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    }

    /// Values accepted but not honoured as asked (for example `acks=1`: rskafka always waits for
    /// all in-sync replicas). Clients log these once at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// `bootstrap.servers` as a list; an error if it is missing or empty.
    pub fn bootstrap_servers(&self) -> Result<Vec<String>> {
        let list = self.list("bootstrap.servers");
        if list.is_empty() {
            return Err(Error::config(
                "bootstrap.servers",
                "is required: set it to host:port of one or more brokers",
            ));
        }
        Ok(list)
    }

    /// `client.id`.
    pub fn client_id(&self) -> &str {
        self.get("client.id").unwrap_or("gregor")
    }

    /// `request.timeout.ms`.
    pub fn request_timeout(&self) -> Duration {
        self.duration_ms("request.timeout.ms")
    }

    /// Checks combinations that single values cannot: call before building a client.
    pub fn validate(&self) -> Result<()> {
        self.bootstrap_servers()?;
        for server in self.list("bootstrap.servers") {
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(Error::config(
                    "bootstrap.servers",
                    format!("{server:?} is not host:port"),
                ));
            }
        }
        let protocol = self.get("security.protocol").unwrap_or("PLAINTEXT");
        let sasl = protocol.starts_with("SASL");
        if sasl && !self.is_set("sasl.username") {
            return Err(Error::config(
                "sasl.username",
                format!("is required with security.protocol={protocol}"),
            ));
        }
        if sasl && !self.is_set("sasl.password") {
            return Err(Error::config(
                "sasl.password",
                format!("is required with security.protocol={protocol}"),
            ));
        }
        if !sasl && self.is_set("sasl.mechanism") {
            return Err(Error::config(
                "sasl.mechanism",
                format!(
                    "is set but security.protocol={protocol} does not use SASL: use SASL_SSL or SASL_PLAINTEXT"
                ),
            ));
        }
        keys::validate_sections(self)
    }

    // ---- typed access for the crate (values were checked when set) ----

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn int(&self, key: &str) -> i64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    pub(crate) fn duration_ms(&self, key: &str) -> Duration {
        Duration::from_millis(u64::try_from(self.int(key)).unwrap_or(0))
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

fn unknown_key(key: &str) -> Error {
    let nearest = keys::all()
        .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
        .map(|name| (edit_distance(key, name), name))
        .min();
    let message = match nearest {
        Some((d, name)) if d <= key.len().max(4) / 2 => {
            format!("unknown property; did you mean `{name}`?")
        }
        _ => "unknown property (see docs/configuration.md for the ones gregor knows)".to_owned(),
    };
    Error::config(key, message)
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `(key, value, line)` entries of a properties file, or the failing line and why.
type Parsed = std::result::Result<Vec<(String, String, usize)>, (usize, String)>;

/// Parses Java `.properties` text into `(key, value, line number)`; errors carry the line.
fn parse_properties(text: &str) -> Parsed {
    let mut out = Vec::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_start();
        let (mut logical, start) = match pending.take() {
            Some((mut acc, start)) => {
                acc.push_str(line);
                (acc, start)
            }
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                (line.to_owned(), line_no)
            }
        };
        // A trailing unescaped backslash continues the logical line.
        let trailing = logical.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.pop();
            pending = Some((logical, start));
            continue;
        }
        let sep = logical
            .find(['=', ':'])
            .ok_or((start, format!("expected key=value, found {logical:?}")))?;
        let key = logical[..sep].trim().to_owned();
        let value = logical[sep + 1..].trim().to_owned();
        if key.is_empty() {
            return Err((start, "empty property name".to_owned()));
        }
        out.push((key, value, start));
    }
    if let Some((_, start)) = pending {
        return Err((start, "file ends inside a continued line".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let e = ClientConfig::new()
            .set("request.timeout.mss", "5")
            .unwrap_err();
        assert!(
            e.to_string().contains("did you mean `request.timeout.ms`"),
            "{e}"
        );
        let e = ClientConfig::new()
            .set("completely.different", "5")
            .unwrap_err();
        assert!(e.to_string().contains("unknown property"), "{e}");
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn values_are_checked_when_set() {
        let e = ClientConfig::new()
            .set("request.timeout.ms", "soon")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("config request.timeout.ms:"),
            "{e}"
        );
        let e = ClientConfig::new()
            .set("security.protocol", "SSLv3")
            .unwrap_err();
        assert!(e.to_string().contains("PLAINTEXT"), "{e}");
        assert_eq!(
            ClientConfig::new()
                .set("security.protocol", "plaintext")
                .unwrap()
                .get("security.protocol"),
            Some("PLAINTEXT")
        );
        // Accepted names whose behaviour gregor lacks are refused, saying so.
        let e = ClientConfig::new()
            .set("ssl.key.password", "pw")
            .unwrap_err();
        assert!(e.to_string().contains("cannot be honoured"), "{e}");
        assert!(!e.to_string().contains("\"pw\""), "{e}");
        assert_eq!(
            ClientConfig::new()
                .set("security.protocol", "sasl_ssl")
                .unwrap()
                .get("security.protocol"),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn defaults_apply_until_set() {
        let c = ClientConfig::new();
        assert_eq!(c.get("request.timeout.ms"), Some("30000"));
        assert!(!c.is_set("request.timeout.ms"));
        let c = c.set("request.timeout.ms", "5000").unwrap();
        assert_eq!(c.request_timeout(), Duration::from_secs(5));
        assert!(c.is_set("request.timeout.ms"));
    }

    #[test]
    fn environment_maps_to_property_names() {
        let c = ClientConfig::new()
            .with_vars([
                ("KAFKA_BOOTSTRAP_SERVERS".to_owned(), "a:1,b:2".to_owned()),
                ("KAFKA_CLIENT_ID".to_owned(), "svc".to_owned()),
                ("KAFKA_HEAP_OPTS".to_owned(), "-Xmx1g".to_owned()),
                ("PATH".to_owned(), "/bin".to_owned()),
            ])
            .unwrap();
        assert_eq!(c.bootstrap_servers().unwrap(), vec!["a:1", "b:2"]);
        assert_eq!(c.client_id(), "svc");
        let e = ClientConfig::new()
            .with_vars([("KAFKA_CLIENT_IDD".to_owned(), "5".to_owned())])
            .unwrap_err();
        assert!(e.to_string().contains("KAFKA_CLIENT_IDD"), "{e}");
        assert!(e.to_string().contains("`client.id`"), "{e}");
    }

    #[test]
    fn properties_files_parse_like_java() {
        let text = "# comment\n! also\nbootstrap.servers = a:1,\\\n  b:2\nclient.id: svc\n\n";
        let parsed = parse_properties(text).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("bootstrap.servers".into(), "a:1,b:2".into(), 3),
                ("client.id".into(), "svc".into(), 5),
            ]
        );
        assert_eq!(parse_properties("novalue\n").unwrap_err().0, 1);
        assert!(parse_properties("a=b\\").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = ClientConfig::new()
            .set("sasl.username", "alice")
            .unwrap()
            .set("sasl.password", "hunter2-secret")
            .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(debug.contains("alice"), "{debug}");
    }

    #[test]
    fn validate_names_what_to_change() {
        let e = ClientConfig::new().validate().unwrap_err();
        assert!(e.to_string().contains("bootstrap.servers"), "{e}");
        let e = ClientConfig::new()
            .set("bootstrap.servers", "nohost")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("not host:port"), "{e}");
        let e = ClientConfig::new()
            .set("bootstrap.servers", "h:1")
            .unwrap()
            .set("sasl.mechanism", "PLAIN")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("does not use SASL"), "{e}");
    }

    #[test]
    fn every_property_default_passes_its_own_check() {
        for p in properties() {
            if let Some(d) = p.default {
                let normal = p
                    .kind
                    .check(d)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                assert_eq!(normal, d, "{}: default is not in canonical form", p.name);
            }
            assert!(!p.doc.is_empty(), "{} has no doc", p.name);
        }
        let mut names: Vec<&str> = properties().map(|p| p.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate property names");
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
