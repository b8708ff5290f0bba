//! gregor's peer for bench/run.py (bench/README.md's contract).

use anyhow::{Result, bail};
use gregor_bench_peer::{Workload, gregor, report};

#[tokio::main]
async fn main() -> Result<()> {
    let w = Workload::from_args()?;
    let outcome = match w.mode.as_str() {
        "produce" => gregor::produce(&w).await?,
        "consume" => gregor::consume(&w).await?,
        "latency" => gregor::latency(&w).await?,
        "worker" => gregor::worker(&w).await?,
        m => bail!("unknown --mode {m}"),
    };
    let client = if w.mode == "worker" {
        "gregor-worker"
    } else {
        "gregor"
    };
    report(client, &w, outcome)
}
