//! `gregor`: the command line. Today it runs the local development Kafka (`gregor dev ...`);
//! topics, produce, consume, groups and dlq commands arrive with the client (issue 7).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

mod manifest;

/// gregor: event-driven services on Apache Kafka.
#[derive(Debug, Parser)]
#[command(name = "gregor", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The local single-node Kafka for development (the one tests share).
    #[command(subcommand)]
    Dev(Dev),
}

#[derive(Debug, Subcommand)]
enum Dev {
    /// Start the local broker (or find the running one) and leave it running.
    Up,
    /// Stop the local broker.
    Down,
    /// Say whether the local broker is running and answering.
    Status,
    /// Print the bootstrap address of the running local broker (the last line is the address).
    Bootstrap,
    /// Create the topics of deployments/topics.yaml, produce records to one with rskafka and
    /// read them back, printing counts and offsets per partition.
    Smoke {
        /// Topic to use; it must be in the manifest.
        #[arg(long, default_value = "commerce.orders.created")]
        topic: String,
        /// Records to produce.
        #[arg(long, default_value_t = 1_000)]
        count: usize,
        /// Topic manifest.
        #[arg(long, default_value = "deployments/topics.yaml")]
        manifest: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(dev) => run_dev(dev).await,
    }
}

async fn run_dev(dev: Dev) -> anyhow::Result<()> {
    match dev {
        Dev::Up => {
            let started = std::time::Instant::now();
            let state = gregor_testkit::ensure_local().await?;
            println!(
                "Kafka {} (KRaft, single node) is up: pid {}, ready {} ms after start, logs {}",
                state.version,
                state.pid,
                state.ready_after_ms,
                state.server_log().display()
            );
            println!(
                "(this command took {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            println!("bootstrap.servers={}", state.bootstrap);
        }
        Dev::Down => match gregor_testkit::stop_local().await? {
            Some(state) => println!("stopped Kafka pid {} ({})", state.pid, state.bootstrap),
            None => println!("no local Kafka was running"),
        },
        Dev::Status => match gregor_testkit::local_status().await {
            Ok(state) => println!(
                "running: Kafka {} pid {} at {} since {}",
                state.version, state.pid, state.bootstrap, state.started_at
            ),
            Err(e) => bail!("{e}"),
        },
        Dev::Bootstrap => {
            let state = gregor_testkit::local_status().await?;
            println!("{}", state.bootstrap);
        }
        Dev::Smoke {
            topic,
            count,
            manifest,
        } => smoke(&topic, count, &manifest).await?,
    }
    Ok(())
}

async fn smoke(topic: &str, count: usize, manifest: &std::path::Path) -> anyhow::Result<()> {
    let topics = manifest::load(manifest)?;
    let spec = topics
        .iter()
        .find(|t| t.name == topic)
        .with_context(|| format!("topic {topic} is not in {}", manifest.display()))?;
    let kafka = gregor_testkit::Kafka::shared().await?;
    println!("broker: {}", kafka.bootstrap());
    let replication = if kafka.is_external() {
        spec.replication
    } else {
        1
    };
    let trip = gregor_testkit::smoke::round_trip(
        kafka.bootstrap(),
        topic,
        spec.partitions,
        replication,
        count,
    )
    .await?;
    println!(
        "topic {} ({} partitions, {}): produced {} records in {:.0} ms, read all back in {:.0} ms",
        trip.topic,
        trip.partitions.len(),
        if trip.created {
            "created now"
        } else {
            "already there"
        },
        trip.total(),
        trip.produce_time.as_secs_f64() * 1e3,
        trip.fetch_time.as_secs_f64() * 1e3,
    );
    println!("partition  records  first offset  last offset  high watermark");
    for p in &trip.partitions {
        println!(
            "{:>9}  {:>7}  {:>12}  {:>11}  {:>14}",
            p.partition, p.records, p.first_offset, p.last_offset, p.high_watermark
        );
    }
    println!(
        "verified: every key, value, header and offset of the {} records read back matches",
        trip.total()
    );
    Ok(())
}
