//! Why a broker could not be started, found or controlled.

use std::path::PathBuf;

/// Everything that can go wrong while providing a real Kafka.
///
/// Each variant says what is missing and, where a broker was started, carries the last lines of
/// its log so a failing test shows the broker's side of the story.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable `java` (17 or newer) was found.
    #[error(
        "Java 17 or newer is needed to run Apache Kafka: {detail}. Install a JDK 17+ and put `java` on PATH or set JAVA_HOME"
    )]
    Java {
        /// What was found instead.
        detail: String,
    },

    /// Maven is needed the first time, to fetch the Kafka jars from Maven Central.
    #[error(
        "Maven (`mvn`) is needed once to fetch the Kafka jars listed in deployments/local/pom.xml: {detail}"
    )]
    Maven {
        /// What went wrong.
        detail: String,
    },

    /// A broker process exited or never became ready.
    #[error("Kafka node {node_id} {what}; last lines of {log}:\n{tail}")]
    Broker {
        /// KRaft node id.
        node_id: i32,
        /// What happened ("exited with status 1", "not ready after 90 s", ...).
        what: String,
        /// The log file that was read.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },

    /// A port we picked was taken by someone else before the broker bound it.
    #[error(
        "port {port} on 127.0.0.1 is in use (picked as free, then taken before Kafka bound it)"
    )]
    PortInUse {
        /// The port.
        port: u16,
    },

    /// A node id that this cluster does not have.
    #[error("no node {node_id} in this cluster (nodes are {known:?})")]
    UnknownNode {
        /// The id asked for.
        node_id: i32,
        /// The ids the cluster has.
        known: Vec<i32>,
    },

    /// The operation needs a broker that this process started.
    #[error("{0}")]
    NotLocal(String),

    /// The local broker's state file is missing or unreadable.
    #[error("no local broker is running ({detail}); start one with `just up`")]
    NotRunning {
        /// Why we think so.
        detail: String,
    },

    /// A Kafka request failed.
    #[error("Kafka request to {bootstrap} failed: {detail}")]
    Kafka {
        /// Where it was sent.
        bootstrap: String,
        /// The client's error.
        detail: String,
    },

    /// One of Kafka's own command-line tools failed.
    #[error("Kafka tool {class} failed ({status}): {stderr}")]
    Tool {
        /// Main class that was run.
        class: String,
        /// Exit status.
        status: String,
        /// What it printed on stderr (last lines).
        stderr: String,
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

/// Result with the testkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
