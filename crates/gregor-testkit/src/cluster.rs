//! A dedicated multi-node KRaft cluster for one test, with fault injection by node id.
//!
//! Each node is broker and controller (combined mode) with a static voter set, so losing one
//! of three keeps a quorum. The cluster belongs to the test that started it: it is killed when
//! the value is dropped, and a later start reaps clusters whose owning process died.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::dist::{Distribution, state_root};
use crate::error::{Error, IoContext, Result};
use crate::node::{NodeSpec, pid_alive, signal, terminate};
use crate::ports::free_ports;
use crate::probe::{ClusterMetadata, metadata};
use crate::ready::{start_timeout, wait_until_ready};

/// A Kafka cluster id: 16 random bytes, base64url without padding (Kafka's `Uuid` form).
pub(crate) fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut out = String::with_capacity(22);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        // Kafka never hands out ids starting with '-' (they read like command-line flags).
        if !out.starts_with('-') {
            return out;
        }
    }
}

/// The broker properties the testkit writes for node 1 of an `nodes`-node cluster (ports are
/// placeholders: 9092 for clients, 9093 for the controller). Tests compare them with
/// `deployments/` so the docker-compose setup and the local one cannot drift apart.
pub fn reference_properties(nodes: usize) -> Vec<(&'static str, String)> {
    let nodes = nodes.clamp(1, 5);
    let replication = i16::try_from(nodes.min(3)).unwrap_or(3);
    NodeSpec {
        node_id: 1,
        port: 9092,
        controller_port: 9093,
        voters: (1..=nodes)
            .map(|i| format!("{i}@127.0.0.1:9093"))
            .collect::<Vec<_>>()
            .join(","),
        dir: PathBuf::from("/var/lib/kafka"),
        replication,
        min_isr: (replication - 1).max(1),
        heap: "512m",
        security: None,
    }
    .properties()
}

/// The state of one node as the test sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Running (or started and not yet known to have exited).
    Running,
    /// Sent SIGSTOP; resume with [`Cluster::resume`].
    Paused,
    /// Killed or stopped; bring back with [`Cluster::restart`].
    Down,
}

struct Node {
    spec: NodeSpec,
    child: Option<Child>,
    state: NodeState,
}

impl Node {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A local cluster of `n` KRaft nodes (usually three: RF 3, `min.insync.replicas` 2).
pub struct Cluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    dist: Distribution,
    cluster_id: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir)
            .field("bootstrap", &self.bootstrap())
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts a three-node cluster (RF 3, min ISR 2) and waits until every node answers metadata
    /// and sees all three brokers.
    pub async fn three_nodes() -> Result<Cluster> {
        Self::start(3).await
    }

    /// Starts `n` nodes (1 to 5). Replication is `min(n, 3)`, min ISR `replication - 1` (at least 1).
    ///
    /// Fault injection needs processes this test owns, so with `KAFKA_BOOTSTRAP_SERVERS` set this
    /// fails rather than pretending.
    pub async fn start(n: usize) -> Result<Cluster> {
        if std::env::var_os(crate::local::BOOTSTRAP_ENV).is_some() {
            return Err(Error::NotLocal(format!(
                "a local {n}-node cluster was asked for while {} names an external cluster: fault \
                 injection needs brokers this test starts; unset it to run this test",
                crate::local::BOOTSTRAP_ENV
            )));
        }
        if !(1..=5).contains(&n) {
            return Err(Error::NotLocal(format!(
                "a cluster has 1 to 5 nodes, not {n}"
            )));
        }
        let dist = tokio::task::spawn_blocking(Distribution::ensure)
            .await
            .map_err(|e| Error::Io {
                context: "preparing the Kafka distribution".into(),
                source: std::io::Error::other(e),
            })??;
        tokio::task::spawn_blocking(reap_orphans)
            .await
            .map_err(|e| Error::Io {
                context: "reaping orphaned clusters".into(),
                source: std::io::Error::other(e),
            })?;
        let mut last = None;
        for _attempt in 0..3 {
            match Self::try_start(n, &dist).await {
                Ok(cluster) => return Ok(cluster),
                Err(e @ Error::PortInUse { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotLocal("three attempts to start failed".into())))
    }

    async fn try_start(n: usize, dist: &Distribution) -> Result<Cluster> {
        let dir = state_root().join("clusters").join(format!(
            "{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        fs::write(dir.join("owner"), std::process::id().to_string())
            .context(|| format!("writing {}/owner", dir.display()))?;
        let ports = free_ports(2 * n)?;
        let voters = (0..n)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let replication = i16::try_from(n.min(3)).unwrap_or(3);
        let specs: Vec<NodeSpec> = (0..n)
            .map(|i| NodeSpec {
                node_id: i32::try_from(i + 1).unwrap_or(i32::MAX),
                port: ports[2 * i],
                controller_port: ports[2 * i + 1],
                voters: voters.clone(),
                dir: dir.join(format!("node-{}", i + 1)),
                replication,
                min_isr: (replication - 1).max(1),
                heap: "512m",
                security: None,
            })
            .collect();
        let cluster_id = new_cluster_id();
        // Format all nodes at once: each is a JVM start.
        let formats: Vec<_> = specs
            .iter()
            .cloned()
            .map(|spec| {
                let dist = dist.clone();
                let id = cluster_id.clone();
                tokio::task::spawn_blocking(move || spec.format(&dist, &id))
            })
            .collect();
        for f in formats {
            f.await.map_err(|e| Error::Io {
                context: "formatting a cluster node".into(),
                source: std::io::Error::other(e),
            })??;
        }
        let mut cluster = Cluster {
            dir,
            nodes: Vec::with_capacity(n),
            dist: dist.clone(),
            cluster_id,
        };
        for spec in specs {
            let child = spec.spawn(dist)?;
            cluster.nodes.push(Node {
                spec,
                child: Some(child),
                state: NodeState::Running,
            });
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_node_ready(i).await?;
        }
        cluster.wait_brokers(n, start_timeout()).await?;
        Ok(cluster)
    }

    async fn wait_node_ready(&mut self, index: usize) -> Result<Duration> {
        let node = &mut self.nodes[index];
        let spec = node.spec.clone();
        let child = &mut node.child;
        wait_until_ready(
            &spec.bootstrap(),
            start_timeout(),
            || match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Err(spec.failure(format!("exited with {status}"))),
                _ => Ok(()),
            },
            |why| spec.failure(why),
        )
        .await
    }

    /// Waits until a running node reports `expected` live brokers.
    async fn wait_brokers(&self, expected: usize, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < timeout {
            for node in self.nodes.iter().filter(|n| n.state == NodeState::Running) {
                if let Ok(meta) = metadata(&node.spec.bootstrap(), &[]).await {
                    if meta.brokers.len() == expected {
                        return Ok(());
                    }
                    seen = meta.brokers;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(self.nodes[0].spec.failure(format!(
            "cluster did not see {expected} brokers within {timeout:?} (saw {seen:?})"
        )))
    }

    /// `bootstrap.servers` listing every node.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.spec.bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port` of one node.
    pub fn node_address(&self, node_id: i32) -> Result<String> {
        Ok(self.node(node_id)?.spec.bootstrap())
    }

    /// Node ids, ascending.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.spec.node_id).collect()
    }

    /// What the test last did to a node.
    pub fn state(&self, node_id: i32) -> Result<NodeState> {
        Ok(self.node(node_id)?.state)
    }

    /// The node's server log (for assertions and for failure output).
    pub fn server_log(&self, node_id: i32) -> Result<PathBuf> {
        Ok(self.node(node_id)?.spec.server_log())
    }

    fn node(&self, node_id: i32) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.spec.node_id == node_id)
            .ok_or_else(|| Error::UnknownNode {
                node_id,
                known: self.node_ids(),
            })
    }

    fn node_mut(&mut self, node_id: i32) -> Result<&mut Node> {
        let known = self.node_ids();
        self.nodes
            .iter_mut()
            .find(|n| n.spec.node_id == node_id)
            .ok_or(Error::UnknownNode { node_id, known })
    }

    /// Metadata as seen by any running node (the first that answers).
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata> {
        let mut last = None;
        for node in self.nodes.iter().filter(|n| n.state == NodeState::Running) {
            match metadata(&node.spec.bootstrap(), topics).await {
                Ok(m) => return Ok(m),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotLocal("no node of the cluster is running".into())))
    }

    /// The current leader of `topic`/`partition`, waiting up to `timeout` for there to be one.
    pub async fn leader(&self, topic: &str, partition: i32, timeout: Duration) -> Result<i32> {
        let start = Instant::now();
        loop {
            if let Ok(meta) = self.metadata(&[topic]).await
                && let Some(p) = meta.partition(topic, partition)
                && p.leader >= 0
            {
                return Ok(p.leader);
            }
            if start.elapsed() > timeout {
                return Err(Error::Kafka {
                    bootstrap: self.bootstrap(),
                    detail: format!("no leader for {topic}/{partition} within {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `topic`/`partition` has a leader other than `old` (after a fault).
    pub async fn wait_new_leader(
        &self,
        topic: &str,
        partition: i32,
        old: i32,
        timeout: Duration,
    ) -> Result<i32> {
        let start = Instant::now();
        loop {
            if let Ok(meta) = self.metadata(&[topic]).await
                && let Some(p) = meta.partition(topic, partition)
                && p.leader >= 0
                && p.leader != old
            {
                return Ok(p.leader);
            }
            if start.elapsed() > timeout {
                return Err(Error::Kafka {
                    bootstrap: self.bootstrap(),
                    detail: format!(
                        "{topic}/{partition} still led by {old} (or by none) after {timeout:?}"
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: the node dies without flushing or telling anyone.
    pub fn kill(&mut self, node_id: i32) -> Result<()> {
        let node = self.node_mut(node_id)?;
        if let Some(mut child) = node.child.take() {
            child.kill().context(|| format!("killing node {node_id}"))?;
            let _ = child.wait();
        }
        node.state = NodeState::Down;
        Ok(())
    }

    /// SIGTERM and wait for a clean shutdown (controlled shutdown moves leadership first).
    pub async fn stop(&mut self, node_id: i32) -> Result<()> {
        let node = self.node_mut(node_id)?;
        if let Some(mut child) = node.child.take() {
            let dir = node.spec.dir.clone();
            let pid = child.id();
            tokio::task::spawn_blocking(move || {
                terminate(pid, &dir, Duration::from_secs(60));
                let _ = child.wait();
            })
            .await
            .map_err(|e| Error::Io {
                context: format!("stopping node {node_id}"),
                source: std::io::Error::other(e),
            })?;
        }
        node.state = NodeState::Down;
        Ok(())
    }

    /// SIGSTOP: the process freezes with its sockets open (a GC pause or a hung host).
    pub fn pause(&mut self, node_id: i32) -> Result<()> {
        let node = self.node_mut(node_id)?;
        let pid = node.pid().ok_or_else(|| {
            Error::NotLocal(format!("node {node_id} is not running, cannot pause it"))
        })?;
        signal(pid, "STOP")?;
        node.state = NodeState::Paused;
        Ok(())
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&mut self, node_id: i32) -> Result<()> {
        let node = self.node_mut(node_id)?;
        let pid = node.pid().ok_or_else(|| {
            Error::NotLocal(format!("node {node_id} is not running, cannot resume it"))
        })?;
        signal(pid, "CONT")?;
        node.state = NodeState::Running;
        Ok(())
    }

    /// Starts a node that was killed or stopped, on the same ports and data, and waits until it
    /// answers metadata and the cluster sees every broker again.
    pub async fn restart(&mut self, node_id: i32) -> Result<Duration> {
        let started = Instant::now();
        let index = self
            .nodes
            .iter()
            .position(|n| n.spec.node_id == node_id)
            .ok_or_else(|| Error::UnknownNode {
                node_id,
                known: self.node_ids(),
            })?;
        if self.nodes[index].child.is_some() {
            if self.nodes[index].state == NodeState::Paused {
                self.resume(node_id)?;
            }
            self.kill(node_id)?;
        }
        let child = self.nodes[index].spec.spawn(&self.dist)?;
        self.nodes[index].child = Some(child);
        self.nodes[index].state = NodeState::Running;
        self.wait_node_ready(index).await?;
        let live = self
            .nodes
            .iter()
            .filter(|n| n.state != NodeState::Down)
            .count();
        self.wait_brokers(live, start_timeout()).await?;
        Ok(started.elapsed())
    }

    /// The cluster's directory under `target/gregor/clusters/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                if node.state == NodeState::Paused {
                    let _ = signal(child.id(), "CONT");
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "gregor-testkit: kept the failed test's cluster logs in {}",
                self.dir.display()
            );
            for node in &self.nodes {
                let _ = fs::remove_dir_all(node.spec.data_dir());
            }
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kills the nodes of clusters whose owning process is gone (a test binary killed mid-run).
fn reap_orphans() {
    let root = state_root().join("clusters");
    let Ok(entries) = fs::read_dir(&root) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let dir = entry.path();
        let owner: Option<u32> = fs::read_to_string(dir.join("owner"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let owner_alive = owner.is_some_and(|pid| {
            pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
        });
        if owner_alive {
            continue;
        }
        let Ok(nodes) = fs::read_dir(&dir) else {
            continue;
        };
        for node in nodes.filter_map(|e| e.ok()) {
            let node_dir = node.path();
            if let Some(pid) = fs::read_to_string(node_dir.join("pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                && pid_alive(pid, &node_dir)
            {
                let _ = signal(pid, "CONT");
                let _ = signal(pid, "KILL");
            }
        }
        // Keep logs of clusters that died with their test; drop their data.
        for node in fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
        {
            let _ = fs::remove_dir_all(node.path().join("data"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        for _ in 0..200 {
            let id = new_cluster_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'));
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
}
