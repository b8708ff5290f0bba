//! `gregor dev`: the local single-node Kafka and schema registry from gregor-testkit.

use anyhow::Context;
use clap::Subcommand;

use crate::CliResult;
use crate::manifest;

#[derive(Debug, Subcommand)]
pub(crate) enum Dev {
    /// Start the local broker and schema registry (or find the running ones) and leave them running.
    Up,
    /// Stop the local broker and schema registry.
    Down,
    /// Say whether the local broker and schema registry are running and answering.
    Status,
    /// Print the bootstrap address of the running local broker (the last line is the address).
    Bootstrap,
    /// Create the topics of a manifest on the local broker, produce records to one with rskafka
    /// and read them back, printing counts and offsets per partition.
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

pub(crate) async fn run(dev: Dev) -> CliResult {
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
            let registry = gregor_testkit::registry::ensure_registry().await?;
            println!(
                "schema registry (Apicurio {}, Confluent API) is up: pid {}, ready {} ms after start, log {}",
                registry.version,
                registry.pid,
                registry.ready_after_ms,
                registry.log().display()
            );
            println!("schema.registry.url={}", registry.url);
            println!(
                "(this command took {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            // Last line: the bootstrap address (`just bootstrap` and scripts read it).
            println!("bootstrap.servers={}", state.bootstrap);
        }
        Dev::Down => {
            match gregor_testkit::stop_local().await? {
                Some(state) => println!("stopped Kafka pid {} ({})", state.pid, state.bootstrap),
                None => println!("no local Kafka was running"),
            }
            match gregor_testkit::registry::stop_registry().await? {
                Some(r) => println!("stopped schema registry pid {} ({})", r.pid, r.url),
                None => println!("no local schema registry was running"),
            }
        }
        Dev::Status => {
            let state = gregor_testkit::local_status().await?;
            println!(
                "running: Kafka {} pid {} at {} since {}",
                state.version, state.pid, state.bootstrap, state.started_at
            );
            match gregor_testkit::registry::registry_status().await {
                Ok(r) => println!(
                    "running: schema registry (Apicurio {}) pid {} at {} since {}",
                    r.version, r.pid, r.url, r.started_at
                ),
                Err(e) => println!("schema registry: {e}"),
            }
        }
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

async fn smoke(topic: &str, count: usize, manifest: &std::path::Path) -> CliResult {
    let topics = manifest::load(manifest).map_err(crate::Failure::usage)?;
    let spec = topics
        .iter()
        .find(|t| t.name == topic)
        .with_context(|| format!("topic {topic} is not in {}", manifest.display()))
        .map_err(crate::Failure::usage)?;
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
