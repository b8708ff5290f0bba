//! `deployments/topics.yaml`: the topics a deployment needs.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// One topic of the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) replication: i16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    topics: Vec<TopicSpec>,
}

/// Reads and checks a manifest.
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<TopicSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for t in &manifest.topics {
        if t.partitions < 1 {
            anyhow::bail!(
                "{}: topic {} needs at least 1 partition",
                path.display(),
                t.name
            );
        }
        if t.replication < 1 {
            anyhow::bail!(
                "{}: topic {} needs replication of at least 1",
                path.display(),
                t.name
            );
        }
    }
    Ok(manifest.topics)
}
