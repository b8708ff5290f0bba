//! Topic metadata for the producer: partition counts cached per topic, loaded on first use
//! through gregor's own Metadata request, refreshed every `metadata.max.age.ms` (and at once
//! when a record names a partition the cache does not know), so added partitions are used.
//! Leader moves are rskafka's: its partition clients follow the leader on their own.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gregor_partition::Partitioner;

use super::Shared;
use super::accumulator::{self, PartitionState};
use crate::error::{Context, Error, KafkaCode, Result};

/// One topic: its partitioner and its partitions' accumulators.
pub(crate) struct TopicState {
    pub(crate) partitioner: Arc<dyn Partitioner>,
    pub(crate) partitions: Vec<Arc<PartitionState>>,
}

impl TopicState {
    pub(crate) fn count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    pub(crate) fn partition(&self, p: i32) -> Option<&Arc<PartitionState>> {
        usize::try_from(p).ok().and_then(|i| self.partitions.get(i))
    }
}

impl Shared {
    /// The topic's state, loading its metadata on first use (bounded by `max.block.ms`).
    pub(crate) async fn topic(self: &Arc<Self>, name: &str) -> Result<Arc<TopicState>> {
        if let Some(t) = self.topics_read().get(name) {
            return Ok(Arc::clone(t));
        }
        let max_block = self.settings.max_block;
        let _loading = tokio::time::timeout(max_block, self.loading.lock())
            .await
            .map_err(|_| Error::Timeout {
                what: "waiting for topic metadata".into(),
                context: Box::new(Context::topic(name)),
                after: max_block,
            })?;
        if let Some(t) = self.topics_read().get(name) {
            return Ok(Arc::clone(t));
        }
        let count = self.partition_count(name, max_block).await?;
        Ok(self.install(Arc::from(name), count))
    }

    /// Partitions of `name` from a fresh Metadata request; waits out `LEADER_NOT_AVAILABLE`
    /// (a topic being created) up to `wait`, fails at once on anything else.
    async fn partition_count(&self, name: &str, wait: Duration) -> Result<i32> {
        let start = Instant::now();
        let mut backoff = self.settings.backoff.max(Duration::from_millis(10));
        loop {
            let meta = tokio::time::timeout(wait, self.brokers.metadata(Some(&[name])))
                .await
                .map_err(|_| Error::Timeout {
                    what: "topic metadata".into(),
                    context: Box::new(Context::topic(name)),
                    after: wait,
                })??;
            let topic = meta.topic(name).ok_or_else(|| {
                Error::kafka(
                    KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    Context::topic(name),
                    Some("the broker's metadata does not mention it".into()),
                )
            })?;
            match topic.error {
                None if !topic.partitions.is_empty() => {
                    return Ok(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX));
                }
                Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {
                    return Err(Error::kafka(
                        KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                        Context::topic(name),
                        Some("the topic does not exist (gregor never creates topics; create it first)".into()),
                    ));
                }
                Some(code) if !code.is_retriable() => {
                    return Err(Error::kafka(code, Context::topic(name), None));
                }
                _ => {}
            }
            if start.elapsed() + backoff > wait {
                return Err(Error::Timeout {
                    what: format!(
                        "topic metadata (last answer: {})",
                        topic
                            .error
                            .map_or("no partitions".into(), |c| c.to_string())
                    ),
                    context: Box::new(Context::topic(name)),
                    after: wait,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.settings.backoff_max.max(backoff));
        }
    }

    /// Records `count` partitions for `name`, keeping existing accumulators and starting a
    /// task for each new partition. Never shrinks (Kafka never removes partitions).
    fn install(self: &Arc<Self>, name: Arc<str>, count: i32) -> Arc<TopicState> {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let old = topics.get(&name).cloned();
        if let Some(old) = &old
            && old.count() >= count
        {
            return Arc::clone(old);
        }
        let partitioner = old.as_ref().map_or_else(
            || self.strategy.for_topic(&name),
            |o| Arc::clone(&o.partitioner),
        );
        let mut partitions = old
            .as_ref()
            .map(|o| o.partitions.clone())
            .unwrap_or_default();
        let mut tasks = self.lock_tasks();
        for p in i32::try_from(partitions.len()).unwrap_or(i32::MAX)..count {
            let state = Arc::new(PartitionState::new(Arc::clone(&name), p));
            tasks.retain(|t| !t.is_finished());
            tasks.push(tokio::spawn(accumulator::run(
                Arc::clone(self),
                Arc::clone(&state),
                Arc::clone(&partitioner),
            )));
            partitions.push(state);
        }
        drop(tasks);
        let state = Arc::new(TopicState {
            partitioner,
            partitions,
        });
        topics.insert(name, Arc::clone(&state));
        state
    }

    /// `p` checked against the topic. A partition beyond the cached count may have just been
    /// added: metadata is fetched again until it shows up or `max.block.ms` passes (as the
    /// Java client waits), then it is an error naming topic and partition.
    pub(crate) async fn check_partition(
        self: &Arc<Self>,
        state: Arc<TopicState>,
        p: i32,
    ) -> Result<(Arc<TopicState>, i32)> {
        if state.partition(p).is_some() {
            return Ok((state, p));
        }
        let name: Arc<str> = Arc::clone(&state.partitions[0].topic);
        let unknown = |count: i32| {
            Error::kafka(
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                Context::partition(&*name, p),
                Some(format!(
                    "partition {p} does not exist: the topic has partitions 0..{count}"
                )),
            )
        };
        if p < 0 {
            return Err(unknown(state.count()));
        }
        let wait = self.settings.max_block;
        let start = Instant::now();
        let mut backoff = self.settings.backoff.max(Duration::from_millis(10));
        loop {
            let remaining = wait.saturating_sub(start.elapsed());
            let count = self
                .partition_count(&name, remaining.max(Duration::from_millis(1)))
                .await?;
            let state = self.install(Arc::clone(&name), count);
            if state.partition(p).is_some() {
                return Ok((state, p));
            }
            if start.elapsed() + backoff >= wait {
                return Err(unknown(count));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.settings.backoff_max.max(backoff));
        }
    }

    /// Refreshes every known topic's partition count.
    pub(crate) async fn refresh(self: &Arc<Self>) -> Result<()> {
        let names: Vec<Arc<str>> = self.topics_read().keys().cloned().collect();
        if names.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = names.iter().map(|n| &**n).collect();
        let meta = self.brokers.metadata(Some(&refs)).await?;
        for name in &names {
            if let Some(t) = meta.topic(name)
                && t.error.is_none()
                && !t.partitions.is_empty()
            {
                let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                self.install(Arc::clone(name), count);
            }
        }
        Ok(())
    }
}

/// Refreshes topic metadata every `metadata.max.age.ms` until shutdown.
pub(crate) async fn refresh_loop(shared: Arc<Shared>) {
    let every = shared
        .settings
        .metadata_max_age
        .max(Duration::from_millis(100));
    loop {
        let stop = shared.shutdown_signal.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = shared.refresh().await {
            tracing::warn!(error = %e, "producer metadata refresh failed; keeping the cached partition counts");
        }
    }
}
