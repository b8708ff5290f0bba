//! One KRaft node (broker + controller in one JVM): its configuration, its process, its signals.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::dist::{Distribution, tail_file};
use crate::error::{Error, IoContext, Result};

/// How one node is configured. The properties written from it are the local twin of
/// `deployments/kafka/server.properties`; a test keeps the two in step.
#[derive(Debug, Clone)]
pub(crate) struct NodeSpec {
    pub(crate) node_id: i32,
    pub(crate) port: u16,
    pub(crate) controller_port: u16,
    /// `1@127.0.0.1:9093,2@...`: static controller quorum.
    pub(crate) voters: String,
    /// Node home: `server.properties`, `data/`, `logs/`, `pid`.
    pub(crate) dir: PathBuf,
    /// Replication for internal and new topics: 1 for a single node, 3 for the cluster.
    pub(crate) replication: i16,
    /// `min.insync.replicas`: 1 for a single node, 2 for the cluster.
    pub(crate) min_isr: i16,
    /// JVM heap (`-Xmx`).
    pub(crate) heap: &'static str,
    /// Secured listeners (TLS, SASL, ACLs), for security tests.
    pub(crate) security: Option<crate::secure::Security>,
}

impl NodeSpec {
    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub(crate) fn server_log(&self) -> PathBuf {
        self.logs_dir().join("server.log")
    }

    pub(crate) fn stdout_log(&self) -> PathBuf {
        self.logs_dir().join("stdout.log")
    }

    fn properties_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// The broker configuration, in the order it is written.
    pub(crate) fn properties(&self) -> Vec<(&'static str, String)> {
        let rf = self.replication.to_string();
        let isr = self.min_isr.to_string();
        vec![
            ("process.roles", "broker,controller".into()),
            ("node.id", self.node_id.to_string()),
            ("controller.quorum.voters", self.voters.clone()),
            (
                "listeners",
                format!(
                    "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    self.port, self.controller_port
                ),
            ),
            (
                "advertised.listeners",
                format!("PLAINTEXT://127.0.0.1:{}", self.port),
            ),
            ("controller.listener.names", "CONTROLLER".into()),
            ("inter.broker.listener.name", "PLAINTEXT".into()),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
            ),
            ("log.dirs", self.data_dir().display().to_string()),
            ("num.partitions", "1".into()),
            ("default.replication.factor", rf.clone()),
            ("min.insync.replicas", isr.clone()),
            ("offsets.topic.replication.factor", rf.clone()),
            ("offsets.topic.num.partitions", "12".into()),
            ("transaction.state.log.replication.factor", rf.clone()),
            ("transaction.state.log.min.isr", isr.clone()),
            ("transaction.state.log.num.partitions", "6".into()),
            ("share.coordinator.state.topic.replication.factor", rf),
            ("share.coordinator.state.topic.min.isr", isr),
            ("group.initial.rebalance.delay.ms", "0".into()),
            ("auto.create.topics.enable", "false".into()),
            ("unclean.leader.election.enable", "false".into()),
            ("delete.topic.enable", "true".into()),
        ]
        .into_iter()
        .chain(self.security.iter().flat_map(|sec| sec.properties(self)))
        .fold(Vec::new(), |mut props, (k, v)| {
            // Later entries (the secured listeners) replace earlier ones with the same key.
            props.retain(|(key, _)| *key != k);
            props.push((k, v));
            props
        })
    }

    fn write_properties(&self) -> Result<()> {
        let mut text = format!(
            "# Written by gregor-testkit for node {}; see deployments/kafka/server.properties for what each line means.\n",
            self.node_id
        );
        for (k, v) in self.properties() {
            text.push_str(k);
            text.push('=');
            text.push_str(&v);
            text.push('\n');
        }
        let path = self.properties_path();
        fs::write(&path, text).context(|| format!("writing {}", path.display()))
    }

    /// Writes the configuration and formats the metadata log (`kafka-storage format`).
    pub(crate) fn format(&self, dist: &Distribution, cluster_id: &str) -> Result<()> {
        fs::create_dir_all(self.logs_dir())
            .context(|| format!("creating {}", self.logs_dir().display()))?;
        self.write_properties()?;
        let out = dist
            .java("kafka.tools.StorageTool", &self.logs_dir(), "256m")
            .args(["format", "-t", cluster_id, "-c"])
            .arg(self.properties_path())
            .args(
                self.security
                    .iter()
                    .flat_map(crate::secure::Security::format_args),
            )
            .output()
            .context(|| format!("running kafka-storage format for node {}", self.node_id))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            return Err(Error::Broker {
                node_id: self.node_id,
                what: format!("could not be formatted ({})", out.status),
                log: self.properties_path(),
                tail: crate::dist::last_lines(&text, 20),
            });
        }
        Ok(())
    }

    /// Starts the JVM in its own process group (a Ctrl-C aimed at the test run does not reach it).
    pub(crate) fn spawn(&self, dist: &Distribution) -> Result<Child> {
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stdout_log())
            .context(|| format!("opening {}", self.stdout_log().display()))?;
        let stderr = stdout
            .try_clone()
            .context(|| format!("opening {}", self.stdout_log().display()))?;
        let mut cmd: Command = dist.java("kafka.Kafka", &self.logs_dir(), self.heap);
        cmd.arg(self.properties_path())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        let child = cmd
            .spawn()
            .context(|| format!("starting Kafka node {}", self.node_id))?;
        let pid_file = self.dir.join("pid");
        fs::write(&pid_file, child.id().to_string())
            .context(|| format!("writing {}", pid_file.display()))?;
        Ok(child)
    }

    /// Why the node is not running, with the end of its logs.
    pub(crate) fn failure(&self, what: impl Into<String>) -> Error {
        let mut what = what.into();
        let mut tail = tail_file(&self.server_log(), 25);
        let stdout = tail_file(&self.stdout_log(), 10);
        if !stdout.trim().is_empty() && !stdout.starts_with("(could not read") {
            tail.push_str("\n--- stdout/stderr ---\n");
            tail.push_str(&stdout);
        }
        if let Some(port) = port_in_use(&tail, self) {
            return Error::PortInUse { port };
        }
        if tail.contains("UnsupportedClassVersionError") {
            what.push_str(" (the Java on PATH is too old for this Kafka)");
        }
        Error::Broker {
            node_id: self.node_id,
            what,
            log: self.server_log(),
            tail,
        }
    }
}

fn port_in_use(log: &str, spec: &NodeSpec) -> Option<u16> {
    if !log.contains("Address already in use") {
        return None;
    }
    [spec.port, spec.controller_port]
        .into_iter()
        .find(|p| log.contains(&format!(":{p}")))
        .or(Some(spec.port))
}

/// Sends `signal` (TERM, KILL, STOP, CONT) to `pid` with the system `kill`.
pub(crate) fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .context(|| format!("sending SIG{signal} to {pid}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Io {
            context: format!("sending SIG{signal} to {pid}"),
            source: std::io::Error::other(format!("kill exited with {status}")),
        })
    }
}

/// Whether `pid` is a live (not zombie) process whose command line mentions `marker`.
/// The marker (the node's directory) guards against a recycled pid.
pub(crate) fn pid_alive(pid: u32, marker: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    // Field 3 is the state; the command name before it is in parentheses and may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let cmdline = fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let marker = marker.display().to_string();
    String::from_utf8_lossy(&cmdline).contains(&marker)
}

/// SIGTERM, then SIGKILL after `grace` if the process is still there.
pub(crate) fn terminate(pid: u32, marker: &Path, grace: Duration) {
    if !pid_alive(pid, marker) {
        return;
    }
    let _ = signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !pid_alive(pid, marker) {
            return;
        }
        pause(Duration::from_millis(100));
    }
    let _ = signal(pid, "KILL");
}

/// Blocking wait used only where no runtime is available (Drop, the CLI's `down`).
#[allow(clippy::disallowed_methods)]
pub(crate) fn pause(d: Duration) {
    std::thread::sleep(d);
}
