//! Kafka's own command-line tools (console producer and consumer, TopicCommand,
//! ConsumerGroupCommand, perf tools) run from the same jars as the broker: a client nobody here
//! wrote, for interoperability tests.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::dist::{Distribution, last_lines, state_root};
use crate::error::{Error, IoContext, Result};

/// Well-known main classes of the Kafka distribution.
pub mod class {
    /// `kafka-console-producer.sh`.
    pub const CONSOLE_PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
    /// `kafka-console-consumer.sh`.
    pub const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
    /// `kafka-topics.sh`.
    pub const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
    /// `kafka-consumer-groups.sh`.
    pub const CONSUMER_GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
    /// `kafka-producer-perf-test.sh`.
    pub const PRODUCER_PERF: &str = "org.apache.kafka.tools.ProducerPerformance";
    /// `kafka-consumer-perf-test.sh`.
    pub const CONSUMER_PERF: &str = "org.apache.kafka.tools.ConsumerPerformance";
    /// `kafka-e2e-latency.sh`.
    pub const END_TO_END_LATENCY: &str = "org.apache.kafka.tools.EndToEndLatency";
    /// `kafka-verifiable-producer.sh`.
    pub const VERIFIABLE_PRODUCER: &str = "org.apache.kafka.tools.VerifiableProducer";
    /// `kafka-verifiable-consumer.sh`.
    pub const VERIFIABLE_CONSUMER: &str = "org.apache.kafka.tools.VerifiableConsumer";
}

/// What a tool printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Standard output (records, for the console consumer).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `main_class` with `args`, feeding `stdin`, and fails unless it exits 0 within `timeout`.
/// Its log4j output goes to `target/gregor/tools/server.log`, not to stdout.
pub async fn run(
    main_class: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ToolOutput> {
    let dist = tokio::task::spawn_blocking(Distribution::ensure)
        .await
        .map_err(|e| Error::Io {
            context: "preparing the Kafka distribution".into(),
            source: std::io::Error::other(e),
        })??;
    let logs = state_root().join("tools");
    std::fs::create_dir_all(&logs).context(|| format!("creating {}", logs.display()))?;
    let mut cmd = tokio::process::Command::from(dist.java(main_class, &logs, "512m"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .context(|| format!("starting Kafka tool {main_class}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .await
            .context(|| format!("writing to {main_class}"))?;
        drop(pipe);
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| Error::Tool {
            class: main_class.to_owned(),
            status: format!("still running after {timeout:?}, killed"),
            stderr: String::new(),
        })?
        .context(|| format!("waiting for {main_class}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(Error::Tool {
            class: main_class.to_owned(),
            status: out.status.to_string(),
            stderr: last_lines(&format!("{stdout}\n{stderr}"), 20),
        });
    }
    Ok(ToolOutput { stdout, stderr })
}
