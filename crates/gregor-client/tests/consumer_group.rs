//! Consumer groups on the real broker: three members share a topic exactly once; a member
//! joining a cooperative group revokes only the partitions that move; a static member's
//! restart goes unnoticed by the others.

mod consumer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_support::{
    Running, bootstrap, config, create_topic, parse_value, produce, settle, unique_group,
};
use gregor_client::{Commits, Consumer, RebalanceListener, TopicPartition};
use gregor_testkit::unique_topic;

/// Runs a consumer until `stop`, returning it and (partition, offset) of every record.
async fn run_member(
    mut consumer: Consumer,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i32, i64)>>>,
) -> Consumer {
    while !stop.load(Ordering::Acquire) {
        let batch = consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll");
        let mut s = seen.lock().unwrap();
        for r in &batch {
            let (p, _) = parse_value(r.value.as_deref().unwrap());
            assert_eq!(
                p, r.partition,
                "value written to partition {p} read from {}",
                r.partition
            );
            s.push((r.partition, r.offset));
        }
    }
    consumer
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_six_partitions_and_read_every_record_once() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("grp-three");
    create_topic(&bootstrap, &topic, 6, &[]).await;
    produce(&bootstrap, &topic, 6, 10_000, 50, None).await;
    let group = unique_group("g-three");

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        // Auto-commit: positions are committed before every revoke, so the eager rebalances
        // while members join lose and repeat nothing.
        let mut consumer = Consumer::connect(&config(&bootstrap, &group))
            .await
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        tasks.push(tokio::spawn(run_member(
            consumer,
            Arc::clone(&stop),
            Arc::clone(&seen),
        )));
    }
    wait_for("60,000 records", Duration::from_secs(60), || {
        seen.lock().unwrap().len() >= 60_000
    })
    .await;
    // A little longer, so a duplicate delivered late would be seen.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Release);
    let mut members = Vec::new();
    for t in tasks {
        members.push(t.await.unwrap());
    }

    let seen = seen.lock().unwrap().clone();
    let unique: BTreeSet<(i32, i64)> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 60_000, "every record read");
    assert_eq!(seen.len(), 60_000, "no record read twice");
    for p in 0..6 {
        let offsets: Vec<i64> = unique
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(offsets, (0..10_000).collect::<Vec<i64>>(), "partition {p}");
    }

    // Every partition has exactly one owner, two each.
    let mut owners: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for m in &members {
        let a = m.assignment();
        assert_eq!(a.len(), 2, "balanced: {a:?}");
        for p in a {
            *owners.entry(p).or_default() += 1;
        }
    }
    assert_eq!(owners.len(), 6);
    assert!(owners.values().all(|&n| n == 1), "{owners:?}");
    let generations: BTreeSet<i32> = members.iter().map(|m| m.generation().unwrap().1).collect();
    assert_eq!(generations.len(), 1, "one generation: {generations:?}");
    for m in &members {
        let stats = m.stats();
        assert_eq!(stats.total_lag, 0, "{stats:?}");
        assert!(stats.rebalances >= 1);
        assert_eq!(m.assignor(), Some("range"));
    }
    for m in members {
        m.close().await.unwrap();
    }
}

/// One listener call: its kind and partitions.
type Event = (String, Vec<TopicPartition>);

/// Records what the listener was told.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    fn of(&self, kind: &str) -> Vec<Vec<TopicPartition>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl RebalanceListener for Events {
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("assigned".into(), partitions.to_vec()));
    }
    fn on_revoked(&mut self, partitions: &[TopicPartition], commits: &mut Commits<'_>) {
        commits.commit_positions();
        self.0
            .lock()
            .unwrap()
            .push(("revoked".into(), partitions.to_vec()));
    }
    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("lost".into(), partitions.to_vec()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_a_cooperative_group_revokes_only_moved_partitions() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("grp-coop");
    create_topic(&bootstrap, &topic, 6, &[]).await;
    produce(&bootstrap, &topic, 6, 100, 20, None).await;
    let group = unique_group("g-coop");
    let cfg = config(&bootstrap, &group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .unwrap();

    let (ea, eb, ec) = (Events::default(), Events::default(), Events::default());
    let member = |events: &Events| {
        let events = events.clone();
        let cfg = cfg.clone();
        let topic = topic.clone();
        async move {
            let mut c = Consumer::connect(&cfg).await.unwrap();
            c.set_listener(events);
            c.subscribe(&[&topic]).unwrap();
            Running::spawn(c)
        }
    };
    let a = member(&ea).await;
    let b = member(&eb).await;
    settle(&[&a, &b], Duration::from_secs(30), |s| {
        s.iter().all(|m| m.assignment.len() == 3)
    })
    .await;
    assert_eq!(a.snapshot().assignor.as_deref(), Some("cooperative-sticky"));
    let before_a: BTreeSet<TopicPartition> = a.snapshot().assignment.into_iter().collect();
    let before_b: BTreeSet<TopicPartition> = b.snapshot().assignment.into_iter().collect();
    let (ea_n, eb_n) = (ea.of("revoked").len(), eb.of("revoked").len());

    let joined = Instant::now();
    let c = member(&ec).await;
    settle(&[&a, &b, &c], Duration::from_secs(30), |s| {
        s.iter().all(|m| m.assignment.len() == 2)
    })
    .await;
    let pause = joined.elapsed();

    let after_a: BTreeSet<TopicPartition> = a.snapshot().assignment.into_iter().collect();
    let after_b: BTreeSet<TopicPartition> = b.snapshot().assignment.into_iter().collect();
    let after_c: BTreeSet<TopicPartition> = c.snapshot().assignment.into_iter().collect();
    // Sticky: a and b keep what they had, minus what moved to c.
    assert!(
        after_a.is_subset(&before_a),
        "{after_a:?} not within {before_a:?}"
    );
    assert!(
        after_b.is_subset(&before_b),
        "{after_b:?} not within {before_b:?}"
    );
    // Revoked since c joined: exactly the partitions that moved to c, nothing else.
    let revoked_by_a: Vec<TopicPartition> = ea.of("revoked")[ea_n..].concat();
    let revoked_by_b: Vec<TopicPartition> = eb.of("revoked")[eb_n..].concat();
    let revoked_now: Vec<TopicPartition> =
        revoked_by_a.iter().chain(&revoked_by_b).cloned().collect();
    let revoked: BTreeSet<TopicPartition> = revoked_now.iter().cloned().collect();
    assert_eq!(revoked, after_c, "only moved partitions are revoked");
    assert_eq!(
        revoked_now.len(),
        2,
        "each moved partition revoked once: {revoked_now:?}"
    );
    let moved_from_a: BTreeSet<TopicPartition> = before_a.difference(&after_a).cloned().collect();
    assert_eq!(
        revoked_by_a.into_iter().collect::<BTreeSet<_>>(),
        moved_from_a
    );
    assert!(ea.of("lost").is_empty() && eb.of("lost").is_empty());
    assert_eq!(
        ec.of("assigned")
            .concat()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        after_c
    );
    eprintln!("cooperative rebalance: a third member had its partitions after {pause:?}");
    for m in [a, b, c] {
        m.stop().await.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarting_within_the_session_causes_no_rebalance() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("grp-static");
    create_topic(&bootstrap, &topic, 4, &[]).await;
    produce(&bootstrap, &topic, 4, 50, 20, None).await;
    let group = unique_group("g-static");
    let cfg = |instance: &str| {
        config(&bootstrap, &group)
            .set("group.instance.id", instance)
            .unwrap()
    };

    let spawn = |instance: &'static str| {
        let cfg = cfg(instance);
        let topic = topic.clone();
        async move {
            let mut c = Consumer::connect(&cfg).await.unwrap();
            c.subscribe(&[&topic]).unwrap();
            Running::spawn(c)
        }
    };
    let a = spawn("static-a").await;
    let b = spawn("static-b").await;
    settle(&[&a, &b], Duration::from_secs(30), |s| {
        s.iter().all(|m| m.assignment.len() == 2) && s[0].generation == s[1].generation
    })
    .await;
    let a_before = a.snapshot();
    let b_parts = b.snapshot().assignment;

    // b goes away (a static member sends no LeaveGroup) and comes back with the same id.
    b.stop().await.close().await.unwrap();
    let b2 = spawn("static-b").await;
    settle(&[&b2], Duration::from_secs(20), |s| {
        !s[0].assignment.is_empty()
    })
    .await;
    assert_eq!(
        b2.snapshot().assignment,
        b_parts,
        "the same partitions come back"
    );
    // Longer than a few heartbeat intervals: no rebalance reaches a.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_after = a.snapshot();
    assert_eq!(
        a_after.rebalances, a_before.rebalances,
        "a saw no rebalance"
    );
    assert_eq!(a_after.generation, a_before.generation, "same generation");
    assert_eq!(a_after.assignment, a_before.assignment);
    for m in [a, b2] {
        m.stop().await.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_learns_its_partitions_were_lost() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("grp-stall");
    create_topic(&bootstrap, &topic, 4, &[]).await;
    produce(&bootstrap, &topic, 4, 10, 20, None).await;
    let group = unique_group("g-stall");
    let cfg = config(&bootstrap, &group)
        .set("max.poll.interval.ms", "2000")
        .unwrap();

    let events = Events::default();
    let mut a = Consumer::connect(&cfg).await.unwrap();
    a.set_listener(events.clone());
    a.subscribe(&[&topic]).unwrap();
    let mut b = Consumer::connect(&cfg).await.unwrap();
    b.subscribe(&[&topic]).unwrap();
    let b = Running::spawn(b);
    let start = Instant::now();
    while !(a.assignment().len() == 2 && b.snapshot().assignment.len() == 2) {
        a.poll(Duration::from_millis(100)).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(30), "did not settle");
    }
    let held = a.assignment();

    // a stops polling: after max.poll.interval.ms it leaves, and b takes everything.
    settle(&[&b], Duration::from_secs(15), |s| {
        s[0].assignment.len() == 4
    })
    .await;
    // a's next poll tells it the partitions were lost (no chance to commit), then it rejoins.
    let start = Instant::now();
    while !(a.assignment().len() == 2 && b.snapshot().assignment.len() == 2) {
        a.poll(Duration::from_millis(100)).await.unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a did not rejoin"
        );
    }
    assert_eq!(events.of("lost"), vec![held]);
    assert_eq!(a.stats().lost, 1);
    a.close().await.unwrap();
    b.stop().await.close().await.unwrap();
}
