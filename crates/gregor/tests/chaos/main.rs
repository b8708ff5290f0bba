//! The fault suite (issue 9), after Kafka's produce-consume-validate system tests: on a
//! three-node cluster (RF 3, min.insync.replicas 2, acks=all), producers and consumers run in
//! the background while a fault repeats, then a validator compares what was acknowledged with
//! what was read. See docs/chaos.md.
//!
//! `GREGOR_CHAOS=full` runs the sizes (at least 100,000 records and 60 s per
//! scenario, 5 leader bounces); the default is a short run for every `cargo test`.
//! Positional arguments select scenarios by substring; `GREGOR_CHAOS_SEED` fixes the seed.
//!
//! This binary also plays the consumer-group members: run with `GREGOR_CHAOS_CHILD=consumer`
//! it is one member in a child process, which the suite can SIGSTOP and kill.

mod ledger;
mod load;
mod scenarios;

use std::time::{Duration, Instant};

use gregor_testkit::Cluster;
use scenarios::{Fault, Rng, Row, Size};

const SCENARIOS: &[&str] = &[
    "leader_bounce",
    "rolling_restart",
    "broker_pause",
    "consumer_pause",
    "consumer_chaos_range",
    "consumer_chaos_cooperative",
    "dlq_leader_kill",
];

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if std::env::var("GREGOR_CHAOS_CHILD").as_deref() == Ok("consumer") {
        load::child_main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for s in SCENARIOS {
            println!("{s}: test");
        }
        return;
    }
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let selected: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.contains(f)))
        .collect();
    if selected.is_empty() {
        println!("chaos: no scenario matches {filters:?}; 0 run");
        return;
    }
    let size = match std::env::var("GREGOR_CHAOS").as_deref() {
        Ok("full") => Size::full(),
        Ok("short") | Err(_) => Size::short(),
        Ok(other) => panic!("GREGOR_CHAOS is `full` or `short`, not `{other}`"),
    };
    let seed = std::env::var("GREGOR_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!(
        "chaos: {} run of {selected:?}, seed {seed} (GREGOR_CHAOS_SEED={seed} repeats the choices)",
        size.name
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let rows = runtime.block_on(run(&selected, &size, seed));
    runtime.shutdown_timeout(Duration::from_secs(10));
    print_table(&rows, &size, started.elapsed());
    let failures: Vec<&String> = rows.iter().flat_map(|r| &r.failures).collect();
    if !failures.is_empty() {
        eprintln!("\nchaos: {} FAILURES (seed {seed}):", failures.len());
        for f in failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    println!("chaos: every scenario passed");
}

async fn run(selected: &[&str], size: &Size, seed: u64) -> Vec<Row> {
    let mut cluster = Cluster::three_nodes()
        .await
        .expect("a real three-node cluster from gregor-testkit (Java 17+)");
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let mut done = 0;
    for &name in selected {
        let t = Instant::now();
        println!("chaos: {name} ...");
        match name {
            "leader_bounce" => rows
                .push(scenarios::group_under_fault(&mut cluster, size, Fault::LeaderBounce).await),
            "rolling_restart" => {
                rows.push(scenarios::group_under_fault(&mut cluster, size, Fault::Rolling).await)
            }
            "broker_pause" => rows
                .push(scenarios::group_under_fault(&mut cluster, size, Fault::BrokerPause).await),
            "consumer_pause" => rows
                .push(scenarios::group_under_fault(&mut cluster, size, Fault::ConsumerPause).await),
            "consumer_chaos_range" => {
                rows.extend(scenarios::consumer_chaos(&cluster, size, "range", &mut rng).await)
            }
            "consumer_chaos_cooperative" => rows.extend(
                scenarios::consumer_chaos(&cluster, size, "cooperative-sticky", &mut rng).await,
            ),
            "dlq_leader_kill" => rows.push(scenarios::dlq_under_faults(&mut cluster, size).await),
            other => unreachable!("unknown scenario {other}"),
        }
        println!("chaos: {name} done in {:.0?}", t.elapsed());
        for r in &rows[done..] {
            println!("chaos: row: {}", row_line(r));
        }
        done = rows.len();
    }
    rows
}

fn print_table(rows: &[Row], size: &Size, took: Duration) {
    println!(
        "\n| scenario | records | faults | lost | duplicated | zombie reads | recovery | took |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0?} |",
            r.scenario,
            r.records,
            r.faults,
            r.lost,
            r.duplicated,
            r.zombie,
            r.recovery.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
            r.took
        );
    }
    println!("\nchaos: {} run took {:.0?}", size.name, took);
}

fn row_line(r: &Row) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.0?} |",
        r.scenario,
        r.records,
        r.faults,
        r.lost,
        r.duplicated,
        r.zombie,
        r.recovery.map_or_else(
            || "never".to_owned(),
            |d| format!("{:.1} s", d.as_secs_f64())
        ),
        r.took
    )
}
