//! The background traffic: a producer of keyed sequences, consumer-group members as child
//! processes (so they can be SIGSTOPped and killed for real), Worker members copying records
//! from one topic to the next, and a watcher of a group's committed offsets.

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gregor::Worker;
use gregor::client::{ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};
use gregor::handler::{BoxHandler, Error, Message, Stack, handler_fn};
use tokio::io::AsyncBufReadExt;
use tokio::task::JoinHandle;

use crate::ledger::{Acked, GroupLog, Id, Read, tick};

/// Session timeout of every group member (the broker's minimum is 6 s).
pub(crate) const SESSION_TIMEOUT_MS: u64 = 6_000;

pub(crate) fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .expect("bootstrap.servers")
}

fn member_config(bootstrap: &str, group: &str, assignor: &str, client: &str) -> ClientConfig {
    config(bootstrap)
        .set("group.id", group)
        .and_then(|c| c.set("client.id", client))
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .and_then(|c| c.set("enable.auto.commit", "false"))
        .and_then(|c| c.set("partition.assignment.strategy", assignor))
        .and_then(|c| c.set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string()))
        .and_then(|c| c.set("heartbeat.interval.ms", "1000"))
        .and_then(|c| c.set("max.poll.interval.ms", "60000"))
        .and_then(|c| c.set("fetch.max.wait.ms", "200"))
        .expect("a valid member configuration")
}

/// The producers of the suite: acks=all (gregor always asks for every in-sync replica),
/// retries within two minutes, so a failover delays records rather than failing them.
pub(crate) async fn producer(bootstrap: &str, linger_ms: u32) -> Producer {
    let c = config(bootstrap)
        .set("acks", "all")
        .and_then(|c| c.set("linger.ms", linger_ms.to_string()))
        .and_then(|c| c.set("delivery.timeout.ms", "120000"))
        .expect("a valid producer configuration");
    Producer::connect(&c).await.expect("a producer")
}

/// What the producer task did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Produced {
    pub(crate) sent: u64,
}

/// Which identities are poison.
pub(crate) type PoisonTest = fn(Id) -> bool;

/// How records are made from identities, and where their acknowledgements go.
pub(crate) struct Feed {
    pub(crate) topic: String,
    pub(crate) keys: u32,
    /// Records per second.
    pub(crate) rate: f64,
    /// Send at least this many, and keep sending until `until` is set.
    pub(crate) records: u64,
    pub(crate) until: Arc<AtomicBool>,
    pub(crate) acked: Arc<Acked>,
    /// Identities that are poison, and the ledger of their acknowledgements.
    pub(crate) poison: Option<(PoisonTest, Arc<Acked>)>,
    pub(crate) make: fn(&str, Id) -> ProducerRecord,
}

/// A plain record: key `k<n>`, value `k<n>:<seq>`.
pub(crate) fn plain(topic: &str, id: Id) -> ProducerRecord {
    ProducerRecord::new(topic.to_owned(), id.text().into_bytes()).key(id.key_bytes())
}

/// One task sends the keys round robin, so each key's sequence is in send order; delivery
/// futures resolve in their own tasks into the ledger.
pub(crate) fn spawn_producer(producer: Producer, feed: Feed) -> JoinHandle<Produced> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut acks = Vec::new();
        let mut i: u64 = 0;
        while i < feed.records || !feed.until.load(Ordering::Acquire) {
            let id = Id {
                key: u32::try_from(i % u64::from(feed.keys)).unwrap_or(0),
                seq: i / u64::from(feed.keys),
            };
            let ledger = match &feed.poison {
                Some((is_poison, poison)) if is_poison(id) => Arc::clone(poison),
                _ => Arc::clone(&feed.acked),
            };
            match producer.enqueue((feed.make)(&feed.topic, id)).await {
                Ok(delivery) => acks.push(tokio::spawn(async move {
                    match delivery.await {
                        Ok(meta) => ledger.ack(meta.partition, meta.offset, id),
                        Err(_) => ledger.fail(),
                    }
                })),
                Err(_) => ledger.fail(),
            }
            i += 1;
            if i.is_multiple_of(50) {
                let due = Duration::from_secs_f64(i as f64 / feed.rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        producer.flush().await;
        for a in acks {
            let _ = a.await;
        }
        Produced { sent: i }
    })
}

/// A consumer-group member in a child process (this test binary run again with
/// `GREGOR_CHAOS_CHILD=consumer`), reporting assignments, reads and commits on its stdout.
pub(crate) struct ChildMember {
    pub(crate) id: u32,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    reader: JoinHandle<()>,
}

impl ChildMember {
    pub(crate) fn spawn(
        id: u32,
        bootstrap: &str,
        group: &str,
        topic: &str,
        assignor: &str,
        log: Arc<GroupLog>,
    ) -> ChildMember {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = tokio::process::Command::new(exe)
            .env("GREGOR_CHAOS_CHILD", "consumer")
            .env("GREGOR_CHAOS_BOOTSTRAP", bootstrap)
            .env("GREGOR_CHAOS_GROUP", group)
            .env("GREGOR_CHAOS_TOPIC", topic)
            .env("GREGOR_CHAOS_ASSIGNOR", assignor)
            .env("GREGOR_CHAOS_MEMBER", id.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("a child consumer process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                parse_line(id, &line, &log);
            }
        });
        ChildMember {
            id,
            child,
            stdin,
            reader,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("a running child")
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// SIGSTOP: the member freezes with its connections open.
    pub(crate) fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) {
        self.signal("CONT");
    }

    /// Closes its stdin: the member commits, leaves the group and exits.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "chaos: member {} did not stop within 60 s; killing it",
                self.id
            );
            let _ = self.child.kill().await;
        }
        let _ = self.reader.await;
    }
}

fn parse_line(member: u32, line: &str, log: &GroupLog) {
    let mut parts = line.splitn(5, ' ');
    match parts.next() {
        Some("A") => {
            let generation = parts.next().and_then(|g| g.parse().ok()).unwrap_or(-1);
            let partitions = parts
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect();
            log.assigned(member, generation, partitions);
        }
        Some("R") => {
            let (Some(p), Some(o), Some(g)) = (
                parts.next().and_then(|p| p.parse().ok()),
                parts.next().and_then(|o| o.parse().ok()),
                parts.next().and_then(|g| g.parse().ok()),
            ) else {
                eprintln!("chaos: member {member} sent a broken line: {line}");
                return;
            };
            let t = tick();
            log.read(Read {
                start: t,
                end: t,
                when: Instant::now(),
                member,
                generation: g,
                epoch: log.epoch(member),
                partition: p,
                offset: o,
                id: parts.next().and_then(Id::parse),
            });
        }
        Some("L") => log.lost(member),
        Some("C") => {
            if let (Some(p), Some(o)) = (
                parts.next().and_then(|p| p.parse().ok()),
                parts.next().and_then(|o| o.parse().ok()),
            ) {
                log.commit(p, o);
            }
        }
        _ => eprintln!("chaos: member {member}: {line}"),
    }
}

/// The child process: a group member that reads, reports every record, then commits what it
/// read after each poll, until its stdin closes.
pub(crate) fn child_main() -> ! {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent"));
    let (bootstrap, group, topic, assignor, member) = (
        env("GREGOR_CHAOS_BOOTSTRAP"),
        env("GREGOR_CHAOS_GROUP"),
        env("GREGOR_CHAOS_TOPIC"),
        env("GREGOR_CHAOS_ASSIGNOR"),
        env("GREGOR_CHAOS_MEMBER"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = String::new();
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        while lock.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
        s.store(true, Ordering::Release);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let config = member_config(
        &bootstrap,
        &group,
        &assignor,
        &format!("chaos-member-{member}"),
    );
    let code = runtime.block_on(async move {
        let mut consumer = Consumer::connect(&config).await.expect("a consumer");
        consumer.set_listener(ReportLost);
        consumer.subscribe(&[topic.as_str()]).expect("subscribe");
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let mut last: Option<(i32, Vec<i32>)> = None;
        let mut errors = 0u32;
        while !stop.load(Ordering::Acquire) {
            let records = match consumer.poll(Duration::from_millis(300)).await {
                Ok(r) => r,
                Err(e) => {
                    errors += 1;
                    if errors <= 5 {
                        eprintln!("chaos member {member}: poll: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let generation = consumer.generation().map_or(-1, |g| g.1);
            let assigned: Vec<i32> = consumer
                .assignment()
                .iter()
                .map(|tp| tp.partition)
                .collect();
            if last.as_ref() != Some(&(generation, assigned.clone())) {
                let list: Vec<String> = assigned.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "A {generation} {}", list.join(","));
                last = Some((generation, assigned));
            }
            if records.is_empty() {
                let _ = out.flush();
                continue;
            }
            let mut next: Vec<(i32, i64)> = Vec::new();
            for r in &records {
                let value = r
                    .value
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let _ = writeln!(out, "R {} {} {generation} {value}", r.partition, r.offset);
                match next.iter_mut().find(|(p, _)| *p == r.partition) {
                    Some(n) => n.1 = n.1.max(r.offset + 1),
                    None => next.push((r.partition, r.offset + 1)),
                }
            }
            // What was read is reported before it is committed.
            let _ = out.flush();
            let offsets: Vec<(&str, i32, i64)> =
                next.iter().map(|(p, o)| (topic.as_str(), *p, *o)).collect();
            match consumer.commit_offsets(&offsets).await {
                Ok(()) => {
                    for (p, o) in &next {
                        let _ = writeln!(out, "C {p} {o}");
                    }
                    let _ = out.flush();
                }
                Err(e) => {
                    errors += 1;
                    if errors <= 5 {
                        eprintln!("chaos member {member}: commit: {e}");
                    }
                }
            }
        }
        let _ = out.flush();
        match consumer.close().await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("chaos member {member}: leaving the group: {e}");
                0
            }
        }
    });
    std::process::exit(code)
}

/// Tells the parent when the member lost its partitions without a chance to commit (it reads
/// them again from the last commit even if it rejoins with the same generation).
struct ReportLost;

impl gregor::client::RebalanceListener for ReportLost {
    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        let list: Vec<String> = partitions.iter().map(|p| p.partition.to_string()).collect();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "L {}", list.join(","));
        let _ = out.flush();
    }
}

/// Where a Worker member sends what it handles (the next topic of the chain).
#[derive(Clone)]
pub(crate) struct Forward {
    pub(crate) producer: Producer,
    pub(crate) topic: String,
    pub(crate) acked: Arc<Acked>,
}

/// A Worker member in this process. Killing it freezes its handlers (a record in hand is
/// never finished, as in a crashed process) and drops its consumer without committing or
/// leaving the group: the coordinator notices after the session timeout.
pub(crate) struct WorkerMember {
    pub(crate) id: u32,
    killed: Arc<AtomicBool>,
    shutdown: gregor::worker::Shutdown,
    join: JoinHandle<()>,
}

impl WorkerMember {
    /// A member that copies each record to `forward` (when given) and logs it as handled.
    pub(crate) async fn copier(
        id: u32,
        bootstrap: &str,
        group: &str,
        topic: &str,
        assignor: &str,
        forward: Option<Forward>,
        log: Arc<GroupLog>,
    ) -> WorkerMember {
        let killed = Arc::new(AtomicBool::new(false));
        let k = Arc::clone(&killed);
        let member = id;
        let handler = handler_fn(move |m: Message| {
            let (k, forward, log) = (Arc::clone(&k), forward.clone(), Arc::clone(&log));
            async move {
                let start = tick();
                freeze_if(&k).await;
                let value = m.value().cloned().unwrap_or_default();
                let id = Id::parse(&String::from_utf8_lossy(&value));
                if let Some(f) = forward {
                    let mut record = ProducerRecord::new(f.topic.clone(), value);
                    if let Some(key) = m.key() {
                        record = record.key(key.clone());
                    }
                    loop {
                        match f.producer.send(record.clone()).await {
                            Ok(meta) => {
                                if let Some(id) = id {
                                    f.acked.ack(meta.partition, meta.offset, id);
                                }
                                break;
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                        freeze_if(&k).await;
                    }
                }
                freeze_if(&k).await;
                log.read(Read {
                    start,
                    end: tick(),
                    when: Instant::now(),
                    member,
                    generation: -1,
                    epoch: 0,
                    partition: m.partition(),
                    offset: m.offset(),
                    id,
                });
                Ok::<(), Error>(())
            }
        });
        WorkerMember::start(
            id,
            bootstrap,
            group,
            topic,
            assignor,
            Stack::new(handler).build(),
            None,
            killed,
        )
        .await
    }

    /// A member running `handler` (built around `killed`, see [`freeze_if`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        id: u32,
        bootstrap: &str,
        group: &str,
        topic: &str,
        assignor: &str,
        handler: BoxHandler,
        codecs: Option<Arc<gregor::codec::CodecRegistry<gregor::event::Event>>>,
        killed: Arc<AtomicBool>,
    ) -> WorkerMember {
        let config = member_config(bootstrap, group, assignor, &format!("chaos-worker-{id}"));
        let mut builder = Worker::builder(config)
            .topics([topic.to_owned()])
            .handler(handler)
            .key_concurrency(8)
            .commit_interval(Duration::from_millis(200))
            .redelivery_backoff(Duration::from_millis(100), Duration::from_secs(2));
        if let Some(c) = codecs {
            builder = builder.codecs(c);
        }
        let worker = builder.build().await.expect("a worker");
        let shutdown = worker.shutdown_handle();
        let join = tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                eprintln!("chaos: worker {id} stopped with an error: {e}");
            }
        });
        WorkerMember {
            id,
            killed,
            shutdown,
            join,
        }
    }

    /// Quits without committing: see the type's documentation.
    pub(crate) fn kill(self) {
        self.killed.store(true, Ordering::Release);
        self.join.abort();
    }

    /// Graceful stop: finish in-flight records, commit, leave.
    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        if tokio::time::timeout(Duration::from_secs(90), self.join)
            .await
            .is_err()
        {
            eprintln!("chaos: worker {} did not stop within 90 s", self.id);
        }
    }
}

/// A killed member's handler never returns (as if its process had died mid-record).
pub(crate) async fn freeze_if(killed: &AtomicBool) {
    if killed.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

/// Polls a group's committed offsets into its log (for Worker groups, whose commits happen
/// inside the Worker). Runs on a thread of its own: a `Consumer` is `Send`, not `Sync`.
pub(crate) fn spawn_watcher(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    log: Arc<GroupLog>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let config = config(bootstrap).set("group.id", group).expect("group.id");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let probe = loop {
                match Consumer::connect(&config).await {
                    Ok(c) => break c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            };
            while !stop.load(Ordering::Acquire) {
                if let Ok(Ok(c)) =
                    tokio::time::timeout(Duration::from_secs(10), probe.committed(&tps)).await
                {
                    for (tp, offset) in c {
                        if let Some(o) = offset {
                            log.commit(tp.partition, o);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    })
}
