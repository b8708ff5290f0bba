//! A group member that prints what it reads, committing after each batch (at-least-once).
//!
//! ```text
//! cargo run -p gregor-client --example consume -- <bootstrap> <topic> <group> [delay-ms]
//! ```
//!
//! Output, one line each: `ASSIGNED <p,p,...>` when the assignment changes, `R <partition>
//! <offset>` per record (printed before its offset is committed). The consumer tests run it as
//! a child process so it can be killed with SIGKILL mid-stream.

use std::io::Write;
use std::time::Duration;

use gregor_client::{ClientConfig, Consumer};

#[tokio::main]
async fn main() -> gregor_client::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, group, rest @ ..] = args.as_slice() else {
        eprintln!("usage: consume <bootstrap> <topic> <group> [delay-ms]");
        std::process::exit(2);
    };
    let delay = Duration::from_millis(rest.first().and_then(|d| d.parse().ok()).unwrap_or(0));
    let config = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)?
        .set("group.id", group)?
        .set("auto.offset.reset", "earliest")?
        .set("enable.auto.commit", "false")?
        .set("session.timeout.ms", "6000")?
        .set("heartbeat.interval.ms", "500")?
        .set("max.poll.records", "100")?
        .set("fetch.max.wait.ms", "100")?;
    let mut consumer = Consumer::connect(&config).await?;
    consumer.subscribe(&[topic])?;
    let mut assignment = Vec::new();
    let stdout = std::io::stdout();
    loop {
        let batch = consumer.poll(Duration::from_millis(200)).await?;
        let now = consumer.assignment();
        let mut out = stdout.lock();
        if now != assignment {
            let list: Vec<String> = now.iter().map(|p| p.partition.to_string()).collect();
            let _ = writeln!(out, "ASSIGNED {}", list.join(","));
            assignment = now;
        }
        for r in &batch {
            let _ = writeln!(out, "R {} {}", r.partition, r.offset);
        }
        let _ = out.flush();
        drop(out);
        if !batch.is_empty() {
            // Processed (printed): commit the positions handed out.
            consumer.commit().await?;
            tokio::time::sleep(delay).await;
        }
    }
}
