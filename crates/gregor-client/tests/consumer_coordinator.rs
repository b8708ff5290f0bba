//! Membership under coordinator trouble, against real brokers:
//!
//! - a member stopped for longer than its session timeout (its whole runtime blocked, as
//!   SIGSTOP stops a process) hands out nothing of the generation the group expired: it asks
//!   the coordinator first, reports `on_lost`, and reads again only in its new generation;
//! - a member whose coordinator's node is killed (three-node cluster) keeps its partitions,
//!   its generation and its positions while it finds the new coordinator: no `on_lost`, no
//!   offset read twice, and commits wait for the new coordinator instead of failing.

mod consumer_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use consumer_support::{bootstrap, config, create_topic, produce, unique_group};
use gregor_client::{Consumer, RebalanceListener, TopicPartition};
use gregor_testkit::{Cluster, unique_topic};

/// Counts `on_lost` calls.
struct CountLost(Arc<AtomicUsize>);

impl RebalanceListener for CountLost {
    fn on_lost(&mut self, _partitions: &[TopicPartition]) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// What the stopped member saw after it was resumed: (partition, offset, generation when
/// handed out, whether the partition was assigned then).
type AfterResume = Vec<(i32, i64, Option<i32>, bool)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_past_its_session_hands_out_nothing_it_no_longer_owns() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("stopped");
    create_topic(&bootstrap, &topic, 2, &[]).await;
    produce(&bootstrap, &topic, 2, 2_000, 20, None).await;
    let group = unique_group("g-stopped");
    // Small polls: most of what member 1 fetched before it stops is still buffered.
    let config1 = config(&bootstrap, &group)
        .set("enable.auto.commit", "false")
        .unwrap()
        .set("max.poll.records", "5")
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let t1 = topic.clone();
    // Member 1 runs on a runtime of its own, on one thread: blocking that thread stops every
    // task of the member (its heartbeat included) while the monotonic clock goes on, which is
    // what SIGSTOP does to a process.
    let member1 = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let lost = Arc::new(AtomicUsize::new(0));
            let mut c = Consumer::connect(&config1).await.unwrap();
            c.set_listener(CountLost(Arc::clone(&lost)));
            c.subscribe(&[&t1]).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.poll(Duration::from_millis(500)).await.unwrap().is_empty() {
                assert!(Instant::now() < deadline, "member 1 read nothing");
            }
            let before = c.generation().map(|g| g.1);
            started_tx.send(()).unwrap();
            // Twice the session timeout (6 s): the coordinator expires the member.
            #[allow(
                clippy::disallowed_methods,
                reason = "blocking the member's only thread is the point: it stops like a process"
            )]
            std::thread::sleep(Duration::from_secs(13));
            let mut after: AfterResume = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                let records = c.poll(Duration::from_millis(300)).await.unwrap();
                let generation = c.generation().map(|g| g.1);
                let owned: BTreeSet<i32> = c.assignment().iter().map(|p| p.partition).collect();
                after.extend(records.iter().map(|r| {
                    (
                        r.partition,
                        r.offset,
                        generation,
                        owned.contains(&r.partition),
                    )
                }));
                if lost.load(Ordering::Acquire) > 0 && generation.is_some_and(|g| Some(g) != before)
                {
                    break;
                }
            }
            let lost = lost.load(Ordering::Acquire);
            let rejoined = c.generation().map(|g| g.1);
            c.close().await.unwrap();
            (before, after, lost, rejoined)
        })
    });

    // Member 2 joins while member 1 is stopped and takes both partitions once member 1's
    // session expired; it keeps polling (and so rebalancing) until member 1 is done.
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let mut c2 = Consumer::connect(&config(&bootstrap, &group))
        .await
        .unwrap();
    c2.subscribe(&[&topic]).unwrap();
    let mut took_both = false;
    while !member1.is_finished() {
        c2.poll(Duration::from_millis(200)).await.unwrap();
        took_both |= c2.assignment().len() == 2;
    }
    let (before, after, lost, rejoined) = member1.join().unwrap();
    c2.close().await.unwrap();

    assert!(
        took_both,
        "member 2 never owned both partitions while member 1 was stopped"
    );
    assert_eq!(
        lost, 1,
        "the resumed member must learn from the coordinator that its membership is gone"
    );
    assert!(
        rejoined.is_some() && rejoined != before,
        "the resumed member rejoins in a new generation (was {before:?}, now {rejoined:?})"
    );
    for (partition, offset, generation, owned) in &after {
        assert!(
            *owned && *generation != before && generation.is_some(),
            "zombie read: partition {partition} offset {offset} handed out in generation \
             {generation:?} (stopped in {before:?}, owned now: {owned})"
        );
    }
}

/// Java's `String.hashCode`, which places a group on a `__consumer_offsets` partition.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_keeps_its_partitions_while_its_coordinators_node_is_killed() {
    const PARTITIONS: i32 = 3;
    const PER_PARTITION: usize = 10_000;
    // The consumer's own account (coordinator lost and found again) is shown if this fails.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
    let mut cluster = Cluster::three_nodes().await.expect("three-node cluster");
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("coordinator-kill");
    gregor_testkit::create_topic(&bootstrap, &topic, PARTITIONS, 3)
        .await
        .unwrap();
    produce(&bootstrap, &topic, PARTITIONS, PER_PARTITION, 20, None).await;
    let group = unique_group("g-coordinator-kill");
    let lost = Arc::new(AtomicUsize::new(0));
    let mut c = Consumer::connect(
        &config(&bootstrap, &group)
            .set("enable.auto.commit", "false")
            .unwrap()
            .set("max.poll.records", "50")
            .unwrap()
            // A commit may wait for the new coordinator (up to 30 s on a loaded machine):
            // that is not the application failing to poll.
            .set("max.poll.interval.ms", "120000")
            .unwrap(),
    )
    .await
    .unwrap();
    c.set_listener(CountLost(Arc::clone(&lost)));
    c.subscribe(&[&topic]).unwrap();

    let mut seen: BTreeSet<(i32, i64)> = BTreeSet::new();
    let mut twice = Vec::new();
    let mut generations = BTreeSet::new();
    let mut commit_failures = Vec::new();
    let mut killed: Option<(i32, Instant)> = None;
    let mut restarted = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    while seen.len() < PARTITIONS as usize * PER_PARTITION {
        assert!(
            Instant::now() < deadline,
            "read {} of {} records",
            seen.len(),
            PARTITIONS as usize * PER_PARTITION
        );
        let records = c.poll(Duration::from_millis(300)).await.unwrap();
        if let Some((_, g)) = c.generation() {
            generations.insert(g);
        }
        let mut next: Vec<(i32, i64)> = Vec::new();
        for r in &records {
            if !seen.insert((r.partition, r.offset)) {
                twice.push((r.partition, r.offset));
            }
            match next.iter_mut().find(|(p, _)| *p == r.partition) {
                Some(n) => n.1 = n.1.max(r.offset + 1),
                None => next.push((r.partition, r.offset + 1)),
            }
        }
        let offsets: Vec<(&str, i32, i64)> =
            next.iter().map(|(p, o)| (topic.as_str(), *p, *o)).collect();
        if let Err(e) = c.commit_offsets(&offsets).await {
            commit_failures.push(e.to_string());
        }
        // About 2,500 records/s: the coordinator dies with most of the topic still to read.
        tokio::time::sleep(Duration::from_millis(20)).await;
        match killed {
            None if seen.len() >= 2_000 => {
                let partition = (java_hash(&group) & 0x7fff_ffff) % 12; // offsets.topic.num.partitions
                let node = cluster
                    .leader("__consumer_offsets", partition, Duration::from_secs(60))
                    .await
                    .unwrap();
                cluster.kill(node).unwrap();
                eprintln!("kill -9 of node {node}, the coordinator of {group}");
                killed = Some((node, Instant::now()));
            }
            // Down for twice the session timeout, then back.
            Some((node, at)) if !restarted && at.elapsed() > Duration::from_secs(12) => {
                cluster.restart(node).await.unwrap();
                restarted = true;
            }
            _ => {}
        }
    }
    let stats = c.stats();
    c.close().await.unwrap();

    assert!(
        killed.is_some() && restarted,
        "the coordinator was never killed"
    );
    assert_eq!(
        lost.load(Ordering::Acquire),
        0,
        "the member gave its partitions up although the group kept it"
    );
    assert_eq!(stats.lost, 0);
    assert_eq!(
        generations.len(),
        1,
        "one generation throughout: {generations:?}"
    );
    assert!(twice.is_empty(), "offsets read twice: {twice:?}");
    assert!(
        commit_failures.is_empty(),
        "commits must wait for the new coordinator: {commit_failures:?}"
    );
}
