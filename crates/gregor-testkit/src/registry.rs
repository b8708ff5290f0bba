//! A real Confluent-compatible schema registry: Apicurio Registry, run from its Maven Central
//! distribution, shared by every test binary of a run the way the local broker is.
//!
//! ```text
//! deployments/local/registry-pom.xml ──mvn dependency:unpack (once)──▶ target/gregor/apicurio-<v>/app/
//!                                                                        │
//! test binary A ─┐                                       ┌─ registry/state.json: pid, url
//! test binary B ─┼─ lock target/gregor/registry/lock ────┤
//! gregor dev up ─┘                                       └─ alive and answering GET /subjects? reuse : start
//! ```
//!
//! The Confluent API is served at `http://127.0.0.1:<port>/apis/ccompat/v7`. Ready means a real
//! `GET /subjects` answered 200, never a sleep. `GREGOR_SCHEMA_REGISTRY_URL` names an external
//! registry instead (any Confluent-compatible one); then nothing is started.
//!
//! How this Apicurio behaves (3.0.9, verified on this machine):
//! - schema ids are Apicurio *content ids*: the same schema text registered under two subjects
//!   gets one id, as in Confluent's registry; ids are global, never per subject;
//! - started with `apicurio.ccompat.use-canonical-hash=true`, so looking up or re-registering a
//!   schema that differs only in whitespace finds the existing version (Confluent's behaviour;
//!   Apicurio's default compares text byte for byte and would add a version);
//! - the default compatibility level is `NONE` (Confluent's is `BACKWARD`): tests that rely on a
//!   level set it on their own subject with `PUT /config/<subject>`;
//! - storage is in memory (H2): a restarted registry is empty.

use std::fs::{self, File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

use crate::dist::{cache_root, last_lines, state_root, tail_file};
use crate::node::{pid_alive, terminate};
use crate::ports::free_ports;

/// Environment variable naming an external registry (its Confluent API base URL, e.g.
/// `http://registry:8081` or `http://host/apis/ccompat/v7`); when set, nothing is started.
pub const REGISTRY_URL_ENV: &str = "GREGOR_SCHEMA_REGISTRY_URL";

/// Path of the Confluent-compatible API on Apicurio.
pub const CCOMPAT_PATH: &str = "/apis/ccompat/v7";

/// The registry pom, embedded like the Kafka one: `deployments/local/registry-pom.xml`.
const POM: &str = include_str!("../../../deployments/local/registry-pom.xml");

/// Why a schema registry could not be started, found or asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No usable Java 17+.
    #[error(
        "Java 17 or newer is needed to run Apicurio Registry: {detail}. Install a JDK 17+ and put `java` on PATH or set JAVA_HOME"
    )]
    Java {
        /// What was found instead.
        detail: String,
    },

    /// Maven is needed once, to fetch the registry distribution from Maven Central.
    #[error(
        "Maven (`mvn`) is needed once to fetch Apicurio Registry {version} (deployments/local/registry-pom.xml): {detail}"
    )]
    Maven {
        /// The Apicurio version asked for.
        version: String,
        /// What went wrong.
        detail: String,
    },

    /// The registry process exited or never answered.
    #[error("schema registry {what}; last lines of {log}:\n{tail}")]
    Process {
        /// What happened ("exited with status 1", "not ready after 120 s", ...).
        what: String,
        /// The log that was read.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },

    /// Nothing is running (for status and stop).
    #[error("no local schema registry is running ({detail}); start one with `gregor dev up`")]
    NotRunning {
        /// Why we think so.
        detail: String,
    },

    /// An HTTP request to the registry failed.
    #[error("schema registry at {url}: {detail}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        detail: String,
    },

    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with [`RegistryError`].
pub type RegistryResult<T> = std::result::Result<T, RegistryError>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RegistryError {
    let context = context.into();
    move |source| RegistryError::Io { context, source }
}

/// The Apicurio Registry version the testkit runs (`<apicurio.version>` in the pom).
pub fn apicurio_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let open = "<apicurio.version>";
        POM.find(open)
            .and_then(|start| {
                let rest = &POM[start + open.len()..];
                rest.find("</apicurio.version>")
                    .map(|end| rest[..end].trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into())
    })
}

/// A schema registry to talk to: the shared local Apicurio, or the one named by
/// `GREGOR_SCHEMA_REGISTRY_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRegistry {
    url: String,
    external: bool,
}

impl SchemaRegistry {
    /// The registry for this test run: the external one if `GREGOR_SCHEMA_REGISTRY_URL` is set,
    /// otherwise the shared local Apicurio, started now if no one has started it yet.
    ///
    /// Fails (never skips) with what is missing when no registry can be had.
    pub async fn shared() -> RegistryResult<SchemaRegistry> {
        static SHARED: OnceCell<SchemaRegistry> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| async {
                if let Some(url) = external_url() {
                    return Ok(SchemaRegistry {
                        url,
                        external: true,
                    });
                }
                let state = ensure_registry().await?;
                Ok(SchemaRegistry {
                    url: state.url,
                    external: false,
                })
            })
            .await
            .cloned()
    }

    /// Base URL of the Confluent Schema Registry API (no trailing slash), e.g.
    /// `http://127.0.0.1:41234/apis/ccompat/v7`: `GET {url}/subjects` lists subjects.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when this is the registry named by `GREGOR_SCHEMA_REGISTRY_URL`.
    pub fn is_external(&self) -> bool {
        self.external
    }
}

fn external_url() -> Option<String> {
    std::env::var(REGISTRY_URL_ENV)
        .ok()
        .map(|s| s.trim().trim_end_matches('/').to_owned())
        .filter(|s| !s.is_empty())
}

/// What `target/gregor/registry/state.json` records about the running local registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistryState {
    /// Apicurio version.
    pub version: String,
    /// JVM process id.
    pub pid: u32,
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    /// Base URL of the Confluent API.
    pub url: String,
    /// Its home (logs).
    pub dir: PathBuf,
    /// When it was started (RFC 3339).
    pub started_at: String,
    /// Milliseconds from spawn to the first successful `GET /subjects`.
    pub ready_after_ms: u64,
}

impl RegistryState {
    /// The registry's log (stdout and stderr of the JVM).
    pub fn log(&self) -> PathBuf {
        self.dir.join("registry.log")
    }
}

fn registry_dir() -> PathBuf {
    state_root().join("registry")
}

fn state_path() -> PathBuf {
    registry_dir().join("state.json")
}

/// Reads the state file; `None` if there is none or it is unreadable.
pub fn registry_state() -> Option<RegistryState> {
    let text = fs::read_to_string(state_path()).ok()?;
    serde_json::from_str(&text).ok()
}

/// The running local registry, if its process is alive and it answers `GET /subjects`.
pub async fn registry_status() -> RegistryResult<RegistryState> {
    let state = registry_state().ok_or_else(|| RegistryError::NotRunning {
        detail: format!("no {}", state_path().display()),
    })?;
    if !pid_alive(state.pid, &state.dir) {
        return Err(RegistryError::NotRunning {
            detail: format!(
                "process {} from {} is gone",
                state.pid,
                state_path().display()
            ),
        });
    }
    subjects_ok(state.port, Duration::from_secs(5)).await?;
    Ok(state)
}

struct LockGuard(File);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

async fn lock_registry() -> RegistryResult<LockGuard> {
    let dir = registry_dir();
    fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join("lock");
    let file = File::create(&path).map_err(io(format!("creating {}", path.display())))?;
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| RegistryError::Io {
            context: "waiting for the registry lock".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io(format!("locking {}", path.display())))?;
    Ok(LockGuard(file))
}

/// Starts the local registry unless a healthy one is already running; returns its state.
pub async fn ensure_registry() -> RegistryResult<RegistryState> {
    let _lock = lock_registry().await?;
    if let Some(state) = registry_state() {
        let reusable = state.version == apicurio_version() && pid_alive(state.pid, &state.dir);
        if reusable
            && subjects_ok(state.port, Duration::from_secs(10))
                .await
                .is_ok()
        {
            return Ok(state);
        }
        terminate(state.pid, &state.dir, Duration::from_secs(10));
    }
    let java = find_java()?;
    let app = tokio::task::spawn_blocking(ensure_distribution)
        .await
        .map_err(|e| RegistryError::Io {
            context: "preparing the registry distribution".into(),
            source: std::io::Error::other(e),
        })??;
    let mut last = None;
    for _attempt in 0..3 {
        match start(&java, &app).await {
            Ok(state) => return Ok(state),
            Err(e @ RegistryError::Process { .. }) if e.to_string().contains("already in use") => {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::NotRunning {
        detail: "three attempts to start failed".into(),
    }))
}

/// Stops the local registry (SIGTERM, SIGKILL after 20 s) and removes its state. Returns the
/// state that was stopped, or `None` if nothing was running.
pub async fn stop_registry() -> RegistryResult<Option<RegistryState>> {
    let _lock = lock_registry().await?;
    let Some(state) = registry_state() else {
        return Ok(None);
    };
    let s = state.clone();
    tokio::task::spawn_blocking(move || terminate(s.pid, &s.dir, Duration::from_secs(20)))
        .await
        .map_err(|e| RegistryError::Io {
            context: "stopping the registry".into(),
            source: std::io::Error::other(e),
        })?;
    fs::remove_file(state_path()).map_err(io(format!("removing {}", state_path().display())))?;
    Ok(Some(state))
}

/// The unpacked distribution: `target/gregor/apicurio-<v>/app/`, fetched with Maven once.
fn ensure_distribution() -> RegistryResult<PathBuf> {
    let version = apicurio_version();
    let home = cache_root().join(format!("apicurio-{version}"));
    let app = home.join("app");
    let done = home.join(".complete");
    fs::create_dir_all(&home).map_err(io(format!("creating {}", home.display())))?;
    if done.exists() {
        return Ok(app);
    }
    let lock = File::create(home.join(".lock"))
        .map_err(io(format!("creating lock in {}", home.display())))?;
    lock.lock()
        .map_err(io(format!("locking {}", home.display())))?;
    if done.exists() {
        return Ok(app);
    }
    let pom = home.join("registry-pom.xml");
    fs::write(&pom, POM).map_err(io(format!("writing {}", pom.display())))?;
    if app.exists() {
        fs::remove_dir_all(&app).map_err(io(format!("clearing {}", app.display())))?;
    }
    let maven = |detail: String| RegistryError::Maven {
        version: version.to_owned(),
        detail,
    };
    let out = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:unpack")
        .arg(format!("-DoutputDirectory={}", app.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| maven(format!("could not run mvn: {e}")))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(maven(format!(
            "mvn exited with {}: {}",
            out.status,
            last_lines(&text, 20)
        )));
    }
    if !runner_jar(&app).exists() {
        return Err(maven(format!(
            "{} is missing after mvn",
            runner_jar(&app).display()
        )));
    }
    fs::write(&done, version).map_err(io(format!("writing {}", done.display())))?;
    Ok(app)
}

fn runner_jar(app: &Path) -> PathBuf {
    app.join(format!(
        "apicurio-registry-app-{}-runner.jar",
        apicurio_version()
    ))
}

async fn start(java: &Path, app: &Path) -> RegistryResult<RegistryState> {
    let port = free_ports(1)
        .map_err(|e| RegistryError::Io {
            context: "picking a free port".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .first()
        .copied()
        .unwrap_or(0);
    let dir = registry_dir().join("server");
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io(format!("clearing {}", dir.display())))?;
    }
    fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let log = dir.join("registry.log");
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io(format!("opening {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let spawned = Instant::now();
    let mut child = Command::new(java)
        .args([
            "-Xmx384m",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
        ])
        .arg("-Dquarkus.http.host=127.0.0.1")
        .arg(format!("-Dquarkus.http.port={port}"))
        // Confluent-like lookups: whitespace and formatting do not make a new version.
        .arg("-Dapicurio.ccompat.use-canonical-hash=true")
        // Tests create a subject per topic; the shared registry outlives many runs.
        .arg("-Dapicurio.ccompat.max-subjects=1000000")
        .arg("-Dquarkus.log.console.color=false")
        // The marker that ties this process to its directory (pid reuse guard).
        .arg(format!("-Dgregor.registry.dir={}", dir.display()))
        .arg("-jar")
        .arg(runner_jar(app))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(io(format!("starting {}", java.display())))?;
    let pid = child.id();
    let failure = |what: String| RegistryError::Process {
        what,
        log: log.clone(),
        tail: tail_file(&log, 30),
    };
    let timeout = start_timeout();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failure(format!("exited with {status}")));
        }
        let last = match subjects_ok(port, Duration::from_secs(2)).await {
            Ok(()) => break,
            Err(e) => e.to_string(),
        };
        if spawned.elapsed() > timeout {
            terminate(pid, &dir, Duration::from_secs(5));
            let _ = child.wait();
            return Err(failure(format!(
                "not ready after {timeout:?} (last attempt: {last})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Deliberately not waited for: it outlives this process, like the local broker.
    drop(child);
    let state = RegistryState {
        version: apicurio_version().to_owned(),
        pid,
        port,
        url: format!("http://127.0.0.1:{port}{CCOMPAT_PATH}"),
        dir,
        started_at: chrono::Utc::now().to_rfc3339(),
        ready_after_ms: u64::try_from(spawned.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let json = serde_json::to_string_pretty(&state).map_err(|e| RegistryError::Io {
        context: "encoding the registry state file".into(),
        source: std::io::Error::other(e),
    })?;
    fs::write(state_path(), json).map_err(io(format!("writing {}", state_path().display())))?;
    Ok(state)
}

fn start_timeout() -> Duration {
    std::env::var("GREGOR_REGISTRY_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(180))
}

/// One `GET /apis/ccompat/v7/subjects` that must answer 200 within `deadline`.
async fn subjects_ok(port: u16, deadline: Duration) -> RegistryResult<()> {
    let path = format!("{CCOMPAT_PATH}/subjects");
    let url = format!("http://127.0.0.1:{port}{path}");
    let (status, body) = tokio::time::timeout(deadline, http_get(port, &path))
        .await
        .map_err(|_| RegistryError::Http {
            url: url.clone(),
            detail: format!("no answer within {deadline:?}"),
        })?
        .map_err(|e| RegistryError::Http {
            url: url.clone(),
            detail: e.to_string(),
        })?;
    if status == 200 {
        Ok(())
    } else {
        Err(RegistryError::Http {
            url,
            detail: format!("status {status}: {}", String::from_utf8_lossy(&body)),
        })
    }
}

/// A minimal HTTP/1.1 GET on 127.0.0.1 (readiness only; the codec has the real client).
/// Reads at most 1 MiB.
async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.take(1 << 20).read_to_end(&mut response).await?;
    let bad = || std::io::Error::other("malformed HTTP response");
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&response[..head_end]).map_err(|_| bad())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(bad)?;
    Ok((status, response[head_end + 4..].to_vec()))
}

/// The Java the broker uses (17+), with the registry's error.
fn find_java() -> RegistryResult<PathBuf> {
    crate::dist::find_java().map_err(|e| match e {
        crate::Error::Java { detail } => RegistryError::Java { detail },
        other => RegistryError::Java {
            detail: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_pins_an_apicurio_that_runs_on_java_17() {
        let v = apicurio_version();
        assert!(v.starts_with("3.0.") || v.starts_with("3.1."), "{v}");
    }
}
