//! rust-rdkafka's peer for bench/run.py (bench/README.md's contract).

use anyhow::{Result, bail};
use gregor_bench_peer::{Workload, rdkafka_peer, report};

#[tokio::main]
async fn main() -> Result<()> {
    let w = Workload::from_args()?;
    let outcome = match w.mode.as_str() {
        "produce" => tokio::task::block_in_place(|| rdkafka_peer::produce(&w))?,
        "consume" => rdkafka_peer::consume(&w).await?,
        "latency" => rdkafka_peer::latency(&w).await?,
        m => bail!("unknown --mode {m}"),
    };
    report("rdkafka", &w, outcome)
}
