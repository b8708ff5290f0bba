//! Topic manifests (`deployments/topics.yaml`) and the topic naming convention.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// One topic of the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) replication: i16,
    #[serde(default)]
    pub(crate) configs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    topics: Vec<TopicSpec>,
}

/// Reads and checks a manifest: every topic needs partitions and replication of at least 1, and
/// names must be unique. The naming convention is checked by the caller (it can be overridden).
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<TopicSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = serde_yaml_ng::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
    let mut seen = std::collections::BTreeSet::new();
    for t in &manifest.topics {
        if t.partitions < 1 {
            bail!(
                "{}: topic {} needs at least 1 partition",
                path.display(),
                t.name
            );
        }
        if t.replication < 1 {
            bail!(
                "{}: topic {} needs replication of at least 1",
                path.display(),
                t.name
            );
        }
        if !seen.insert(t.name.as_str()) {
            bail!("{}: topic {} is listed twice", path.display(), t.name);
        }
    }
    Ok(manifest.topics)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks `<domain>.<entity>.<event_type>`: three dot-separated lower-case segments of
/// letters, digits, `_` and `-`, optionally followed by `.dlq` or `.retry`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let segments: Vec<&str> = name.split('.').collect();
    let core = match segments.as_slice() {
        [a, b, c] => [a, b, c],
        [a, b, c, "dlq" | "retry"] => [a, b, c],
        _ => {
            return Err(format!(
                "topic name {name:?} does not follow <domain>.<entity>.<event_type> (e.g. commerce.orders.created); \
                 pass --allow-legacy-name to use it anyway"
            ));
        }
    };
    for seg in core {
        let ok = !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(format!(
                "topic name {name:?}: segment {seg:?} must be lower-case letters, digits, '_' or '-'; \
                 pass --allow-legacy-name to use it anyway"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        assert!(check_name("commerce.orders.created").is_ok());
        assert!(check_name("commerce.orders.created.dlq").is_ok());
        assert!(check_name("billing.invoice-lines.paid_v2").is_ok());
        assert!(check_name("orders").is_err());
        assert!(check_name("commerce.orders").is_err());
        assert!(check_name("Commerce.orders.created").is_err());
        assert!(check_name("commerce..created").is_err());
        assert!(check_name("commerce.orders.created.extra").is_err());
    }

    #[test]
    fn the_shipped_manifest_is_valid_and_conventional() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployments/topics.yaml");
        let topics = load(&path).unwrap();
        assert!(!topics.is_empty());
        for t in topics {
            check_name(&t.name).unwrap();
        }
    }
}
