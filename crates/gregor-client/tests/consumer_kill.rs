//! kill -9 one of three members mid-stream: its partitions move to the others within the
//! session timeout, nothing is lost, and duplicates stay within the uncommitted window.

mod consumer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_support::{bootstrap, create_topic, produce, unique_group};
use gregor_testkit::unique_topic;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The `consume` example, built by `cargo test` next to this test binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("consume");
    if !path.exists() {
        // `cargo test` builds examples; `cargo test --test consumer_kill` does not.
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "gregor-client", "--example", "consume"])
            .status()
            .unwrap();
        assert!(status.success(), "building the consume example failed");
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

#[derive(Default, Debug)]
struct Seen {
    assignment: Vec<i32>,
    records: Vec<(i32, i64, Instant)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_loses_nothing_and_its_partitions_move_within_the_session_timeout() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("kill");
    create_topic(&bootstrap, &topic, 6, &[]).await;
    produce(&bootstrap, &topic, 6, 5_000, 20, None).await;
    let group = unique_group("g-kill");

    let seen: Vec<Arc<Mutex<Seen>>> = (0..3).map(|_| Arc::default()).collect();
    let mut children = Vec::new();
    for s in &seen {
        // 100 records per batch, 20 ms per batch: about 5,000 records/s per member.
        let mut child = tokio::process::Command::new(example())
            .args([&bootstrap, &topic, &group, "20"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let s = Arc::clone(s);
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = s.lock().unwrap();
                let f: Vec<&str> = line.split_whitespace().collect();
                match f.as_slice() {
                    ["ASSIGNED", ps] => {
                        s.assignment = ps.split(',').map(|p| p.parse().unwrap()).collect()
                    }
                    ["ASSIGNED"] => s.assignment.clear(),
                    ["R", p, o] => {
                        s.records
                            .push((p.parse().unwrap(), o.parse().unwrap(), Instant::now()))
                    }
                    _ => {}
                }
            }
        });
        children.push(child);
    }
    let total = |seen: &[Arc<Mutex<Seen>>]| {
        seen.iter()
            .map(|s| s.lock().unwrap().records.len())
            .sum::<usize>()
    };
    let start = Instant::now();
    while !(seen.iter().all(|s| s.lock().unwrap().assignment.len() == 2) && total(&seen) > 5_000) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "members did not settle and read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = seen[0].lock().unwrap().assignment.clone();
    children[0].start_kill().unwrap(); // SIGKILL: no LeaveGroup, no commit
    let killed = Instant::now();
    children[0].wait().await.unwrap();

    let start = Instant::now();
    loop {
        let unique: BTreeSet<(i32, i64)> = seen
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap()
                    .records
                    .iter()
                    .map(|(p, o, _)| (*p, *o))
                    .collect::<Vec<_>>()
            })
            .collect();
        if unique.len() == 30_000 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "only {} of 30,000 records read",
            unique.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The victim's partitions were picked up by the survivors within the session timeout
    // (6 s) plus a rejoin.
    for p in &victim {
        let first = seen[1..]
            .iter()
            .filter_map(|s| {
                s.lock()
                    .unwrap()
                    .records
                    .iter()
                    .find(|(q, _, t)| q == p && *t > killed)
                    .map(|r| r.2)
            })
            .min()
            .unwrap_or_else(|| panic!("partition {p} never read after the kill"));
        let took = first - killed;
        eprintln!("partition {p} read again {took:?} after kill -9");
        assert!(
            took < Duration::from_secs(12),
            "partition {p} moved after {took:?}"
        );
    }
    // Nothing lost (checked above); duplicates only from the victim's last uncommitted batch.
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for s in &seen {
        for (p, o, _) in &s.lock().unwrap().records {
            *count.entry((*p, *o)).or_default() += 1;
        }
    }
    let duplicates: usize = count.values().map(|n| n - 1).sum();
    eprintln!("duplicates after kill -9: {duplicates}");
    assert!(
        duplicates <= 100,
        "{duplicates} duplicates exceed one uncommitted batch (max.poll.records = 100)"
    );
    assert!(count.keys().all(|(p, _)| (0..6).contains(p)));
    for c in &mut children[1..] {
        c.start_kill().unwrap();
    }
}
