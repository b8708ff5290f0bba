//! The local single-node broker, shared by every test binary of a run and by `just up`.
//!
//! ```text
//! test binary A ─┐                         ┌─ state.json: pid, bootstrap, version
//! test binary B ─┼─ lock target/gregor/local/lock ─┤
//! just up       ─┘                         └─ alive and answering metadata? reuse : start
//! ```
//!
//! Whoever needs it first starts it, detached, and writes the state file; everyone after reuses
//! it. It keeps running after the run so the next one starts warm; `just down` stops it.

use std::fs::{self, File};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::dist::{Distribution, kafka_version, state_root};
use crate::error::{Error, IoContext, Result};
use crate::node::{NodeSpec, pid_alive, terminate};
use crate::ports::free_ports;
use crate::ready::{metadata_ok, start_timeout, wait_until_ready};

/// Environment variable naming an external cluster; when set, nothing is started.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";

/// A Kafka to talk to: the shared local broker, or the external cluster named by
/// `KAFKA_BOOTSTRAP_SERVERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kafka {
    bootstrap: String,
    external: bool,
}

impl Kafka {
    /// The broker for this test run: the external cluster if `KAFKA_BOOTSTRAP_SERVERS` is set,
    /// otherwise the shared local single node, started now if no one has started it yet.
    ///
    /// Fails (never skips) with what is missing when no broker can be had.
    pub async fn shared() -> Result<Kafka> {
        static SHARED: OnceCell<Kafka> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| async {
                if let Some(bootstrap) = external_bootstrap() {
                    return Ok(Kafka {
                        bootstrap,
                        external: true,
                    });
                }
                let state = ensure_local().await?;
                Ok(Kafka {
                    bootstrap: state.bootstrap,
                    external: false,
                })
            })
            .await
            .cloned()
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// True when this is a cluster named by `KAFKA_BOOTSTRAP_SERVERS`.
    pub fn is_external(&self) -> bool {
        self.external
    }
}

fn external_bootstrap() -> Option<String> {
    std::env::var(BOOTSTRAP_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// What `target/gregor/local/state.json` records about the running local broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalState {
    /// Kafka version it runs.
    pub version: String,
    /// JVM process id.
    pub pid: u32,
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
    /// KRaft controller port.
    pub controller_port: u16,
    /// Node home (config, data, logs).
    pub dir: PathBuf,
    /// When it was started (RFC 3339).
    pub started_at: String,
    /// Milliseconds from spawn to the first successful metadata request.
    pub ready_after_ms: u64,
}

impl LocalState {
    /// The broker's main log.
    pub fn server_log(&self) -> PathBuf {
        self.dir.join("logs").join("server.log")
    }
}

fn local_dir() -> PathBuf {
    state_root().join("local")
}

fn state_path() -> PathBuf {
    local_dir().join("state.json")
}

/// Reads the state file; `None` if there is none or it is unreadable.
pub fn local_state() -> Option<LocalState> {
    let text = fs::read_to_string(state_path()).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether the recorded local broker process is alive (not whether it answers).
pub fn local_alive(state: &LocalState) -> bool {
    pid_alive(state.pid, &state.dir)
}

/// The running local broker's state, if it is alive and answers a metadata request.
pub async fn local_status() -> Result<LocalState> {
    let state = local_state().ok_or_else(|| Error::NotRunning {
        detail: format!("no {}", state_path().display()),
    })?;
    if !local_alive(&state) {
        return Err(Error::NotRunning {
            detail: format!(
                "process {} from {} is gone",
                state.pid,
                state_path().display()
            ),
        });
    }
    metadata_ok(&state.bootstrap, Duration::from_secs(5)).await?;
    Ok(state)
}

struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

async fn lock_local() -> Result<LockGuard> {
    let dir = local_dir();
    fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lock");
    let file = File::create(&path).context(|| format!("creating {}", path.display()))?;
    // The lock may be held for a minute while another process starts the broker.
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| Error::Io {
            context: "waiting for the local broker lock".into(),
            source: std::io::Error::other(e),
        })?
        .context(|| format!("locking {}", path.display()))?;
    Ok(LockGuard(file))
}

/// Starts the local single-node broker unless a healthy one is already running; returns its state.
pub async fn ensure_local() -> Result<LocalState> {
    let _lock = lock_local().await?;
    if let Some(state) = local_state() {
        let reusable = state.version == kafka_version() && local_alive(&state);
        if reusable
            && metadata_ok(&state.bootstrap, Duration::from_secs(10))
                .await
                .is_ok()
        {
            return Ok(state);
        }
        // Stale, another version, or hung: replace it.
        terminate(state.pid, &state.dir, Duration::from_secs(10));
    }
    let dist = tokio::task::spawn_blocking(Distribution::ensure)
        .await
        .map_err(|e| Error::Io {
            context: "preparing the Kafka distribution".into(),
            source: std::io::Error::other(e),
        })??;
    let mut last = None;
    for _attempt in 0..3 {
        match start_local(&dist).await {
            Ok(state) => return Ok(state),
            Err(e @ Error::PortInUse { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::NotRunning {
        detail: "three attempts to start failed".into(),
    }))
}

async fn start_local(dist: &Distribution) -> Result<LocalState> {
    let ports = free_ports(2)?;
    let dir = local_dir().join("node-1");
    if dir.exists() {
        fs::remove_dir_all(&dir).context(|| format!("clearing {}", dir.display()))?;
    }
    let spec = NodeSpec {
        node_id: 1,
        port: ports[0],
        controller_port: ports[1],
        voters: format!("1@127.0.0.1:{}", ports[1]),
        dir: dir.clone(),
        replication: 1,
        min_isr: 1,
        heap: "1g",
        security: None,
    };
    let cluster_id = crate::cluster::new_cluster_id();
    let dist2 = dist.clone();
    let spec2 = spec.clone();
    tokio::task::spawn_blocking(move || spec2.format(&dist2, &cluster_id))
        .await
        .map_err(|e| Error::Io {
            context: "formatting the local broker".into(),
            source: std::io::Error::other(e),
        })??;
    let spawned = Instant::now();
    let mut child = spec.spawn(dist)?;
    let pid = child.id();
    let waited = wait_until_ready(
        &spec.bootstrap(),
        start_timeout(),
        || match child.try_wait() {
            Ok(Some(status)) => Err(spec.failure(format!("exited with {status}"))),
            _ => Ok(()),
        },
        |why| spec.failure(why),
    )
    .await;
    if let Err(e) = waited {
        terminate(pid, &spec.dir, Duration::from_secs(5));
        let _ = child.wait();
        return Err(e);
    }
    // The child is deliberately not waited for: it outlives this process.
    drop(child);
    let state = LocalState {
        version: kafka_version().to_owned(),
        pid,
        bootstrap: spec.bootstrap(),
        controller_port: spec.controller_port,
        dir,
        started_at: chrono::Utc::now().to_rfc3339(),
        ready_after_ms: u64::try_from(spawned.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let json = serde_json::to_string_pretty(&state).map_err(|e| Error::Io {
        context: "encoding the state file".into(),
        source: std::io::Error::other(e),
    })?;
    fs::write(state_path(), json).context(|| format!("writing {}", state_path().display()))?;
    Ok(state)
}

/// Stops the local broker (SIGTERM, SIGKILL after 30 s) and removes its state. Returns the state
/// that was stopped, or `None` if nothing was running.
pub async fn stop_local() -> Result<Option<LocalState>> {
    let _lock = lock_local().await?;
    let Some(state) = local_state() else {
        return Ok(None);
    };
    let s = state.clone();
    tokio::task::spawn_blocking(move || terminate(s.pid, &s.dir, Duration::from_secs(30)))
        .await
        .map_err(|e| Error::Io {
            context: "stopping the local broker".into(),
            source: std::io::Error::other(e),
        })?;
    fs::remove_file(state_path()).context(|| format!("removing {}", state_path().display()))?;
    Ok(Some(state))
}
