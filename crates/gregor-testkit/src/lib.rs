#![doc = include_str!("../README.md")]

mod cluster;
mod dist;
mod error;
mod local;
mod node;
mod ports;
mod probe;
mod ready;
pub mod registry;
mod secure;
pub mod smoke;
pub mod tools;

use std::sync::Arc;
use std::time::Duration;

pub use cluster::{Cluster, NodeState, reference_properties};
pub use dist::{Distribution, cache_root, kafka_version, state_root, workspace_root};
pub use error::{Error, Result};
pub use local::{
    BOOTSTRAP_ENV, Kafka, LocalState, ensure_local, local_alive, local_state, local_status,
    stop_local,
};
pub use probe::{ClusterMetadata, PartitionMetadata, TopicMetadata, metadata};
pub use registry::{REGISTRY_URL_ENV, SchemaRegistry};
pub use secure::{Pki, SCRAM_MECHANISMS, SecureKafka, User};

/// A topic name no other test uses: `<prefix>-<random>`.
pub fn unique_topic(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates a topic through rskafka's controller client and waits until every partition has a
/// leader. An existing topic is an error: tests use [`unique_topic`] names.
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i16,
) -> Result<()> {
    let fail = |detail: String| Error::Kafka {
        bootstrap: bootstrap.to_owned(),
        detail,
    };
    let client = ready::client(bootstrap, Duration::from_secs(30)).await?;
    client
        .controller_client()
        .map_err(|e| fail(e.to_string()))?
        .create_topic(topic, partitions, replication, 30_000)
        .await
        .map_err(|e| fail(format!("create topic {topic}: {e}")))?;
    let first = bootstrap.split(',').next().unwrap_or(bootstrap);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let meta = metadata(first, &[topic]).await?;
        let ready = meta.topics.iter().any(|t| {
            t.name == topic
                && t.error_code == 0
                && t.partitions.len() == usize::try_from(partitions).unwrap_or(0)
                && t.partitions.iter().all(|p| p.leader >= 0)
        });
        if ready {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(fail(format!(
                "topic {topic} has no leader for every partition after 30 s: {meta:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An rskafka client for `bootstrap` whose retries give up after `deadline`.
pub async fn rskafka_client(
    bootstrap: &str,
    deadline: Duration,
) -> Result<Arc<rskafka::client::Client>> {
    ready::client(bootstrap, deadline).await.map(Arc::new)
}
