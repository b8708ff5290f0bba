//! One task per assigned partition: decode, handle (in key-ordered lanes), and publish the
//! contiguous completed watermark for the worker loop to commit.
//!
//! ```text
//! records ─▶ order: [o5 ✓][o6 …][o7 ✓][o8 …]      lanes (hash(key) % n), one record at a time each
//!            watermark = first not-done offset (o6): only o5 is committable
//! ```

use std::collections::VecDeque;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use gregor_client::Record;
use gregor_codec::{Context as CodecContext, SharedCodec};
use gregor_event::{Event, Header, Headers};
use gregor_handler::{BoxHandler, Message, Outcome};
use tokio::sync::{Notify, mpsc};
use tower::{Service, ServiceExt};

use super::batch::{Batch, BoxBatchHandler};
use super::stats::{Counters, Tally};

/// State one partition task shares with the worker loop.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Next offset to commit (last contiguous done + 1); -1 before anything is done.
    pub(crate) watermark: AtomicI64,
    /// Records received from the worker loop.
    pub(crate) received: AtomicU64,
    /// Records done (any outcome).
    pub(crate) completed: AtomicU64,
    /// Set when the partition is revoked or the worker stops: take no more records.
    pub(crate) stop: AtomicBool,
    pub(crate) stopped: Notify,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            watermark: AtomicI64::new(-1),
            received: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped: Notify::new(),
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.received
            .load(Ordering::Acquire)
            .saturating_sub(self.completed.load(Ordering::Acquire))
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.stopped.notify_waiters();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// How records are handled.
#[derive(Clone)]
pub(crate) enum Mode {
    Single(BoxHandler),
    Batch {
        handler: BoxBatchHandler,
        max: usize,
        fallback: Option<BoxHandler>,
    },
}

/// Everything a partition task needs.
#[derive(Clone)]
pub(crate) struct Task {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) group: Option<Arc<str>>,
    pub(crate) codec: Option<SharedCodec<Event>>,
    pub(crate) mode: Mode,
    pub(crate) lanes: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) redelivery: (Duration, Duration),
}

/// Offsets received, in order, with their done flags.
#[derive(Debug, Default)]
struct Order {
    entries: VecDeque<(i64, bool)>,
}

impl Order {
    fn push(&mut self, offset: i64) {
        self.entries.push_back((offset, false));
    }

    /// Marks `offset` done; returns the new watermark if it moved.
    fn done(&mut self, offset: i64) -> Option<i64> {
        if let Ok(i) = self.entries.binary_search_by_key(&offset, |e| e.0) {
            self.entries[i].1 = true;
        }
        let mut watermark = None;
        while let Some(&(o, true)) = self.entries.front() {
            self.entries.pop_front();
            watermark = Some(o + 1);
        }
        watermark
    }
}

impl Task {
    /// Runs until the queue closes and everything received is done, or until stopped.
    pub(crate) async fn run(self, mut rx: mpsc::UnboundedReceiver<Vec<Record>>) {
        match self.mode.clone() {
            Mode::Single(handler) if self.lanes <= 1 => self.run_in_order(handler, &mut rx).await,
            Mode::Single(handler) => Arc::new(self).run_single(handler, &mut rx).await,
            Mode::Batch {
                handler,
                max,
                fallback,
            } => self.run_batch(handler, max, fallback, &mut rx).await,
        }
    }

    fn lane_of(&self, record: &Record) -> usize {
        if self.lanes <= 1 {
            return 0;
        }
        let h = match &record.key {
            Some(k) => BuildHasherDefault::<DefaultHasher>::default().hash_one(k.as_ref()),
            None => record.offset.unsigned_abs(),
        };
        usize::try_from(h % self.lanes as u64).unwrap_or(0)
    }

    fn publish_watermark(&self, w: i64) {
        self.shared.watermark.store(w, Ordering::Release);
    }

    /// One record at a time, in offset order: no per-record task or allocation of our own.
    async fn run_in_order(
        &self,
        mut handler: BoxHandler,
        rx: &mut mpsc::UnboundedReceiver<Vec<Record>>,
    ) {
        let mut tally = Tally::default();
        loop {
            let next = tokio::select! {
                biased;
                () = self.shared.stopped.notified(), if !self.shared.stopping() => None,
                r = rx.recv() => r,
            };
            let Some(records) = next else { return };
            let finished = self
                .handle_in_order(&mut handler, records, &mut tally)
                .await;
            tally.flush(&self.counters);
            if !finished {
                return;
            }
        }
    }

    /// Handles `records` one after the other; false when stopped first.
    async fn handle_in_order(
        &self,
        handler: &mut BoxHandler,
        records: Vec<Record>,
        tally: &mut Tally,
    ) -> bool {
        let mut since_flush = 0u32;
        for record in records {
            if self.shared.stopping() {
                return false;
            }
            let offset = record.offset;
            let msg = self.message(record).await;
            if !self.deliver(handler, msg, tally).await {
                return false;
            }
            self.shared.completed.fetch_add(1, Ordering::AcqRel);
            self.publish_watermark(offset + 1);
            since_flush += 1;
            // The counters reach the shared ones every 64 records and at the end of the batch.
            // Handlers that never wait would otherwise keep this thread from the worker loop
            // (polls, commits) for a whole batch.
            if since_flush.is_multiple_of(64) {
                tally.flush(&self.counters);
            }
            tokio::task::consume_budget().await;
        }
        true
    }

    async fn run_single(
        self: Arc<Self>,
        handler: BoxHandler,
        rx: &mut mpsc::UnboundedReceiver<Vec<Record>>,
    ) {
        let n = self.lanes.max(1);
        let mut queues: Vec<VecDeque<Record>> = (0..n).map(|_| VecDeque::new()).collect();
        let mut idle: Vec<Option<BoxHandler>> = (0..n).map(|_| Some(handler.clone())).collect();
        let mut running: FuturesUnordered<BoxFuture<'static, (usize, BoxHandler, i64, bool)>> =
            FuturesUnordered::new();
        let mut order = Order::default();
        let mut closed = false;
        loop {
            for lane in 0..n {
                if idle[lane].is_none() {
                    continue;
                }
                let Some(record) = queues[lane].pop_front() else {
                    continue;
                };
                let Some(h) = idle[lane].take() else { continue };
                let task = Arc::clone(&self);
                running.push(Box::pin(async move {
                    let offset = record.offset;
                    let (h, done) = task.handle(h, record).await;
                    (lane, h, offset, done)
                }));
            }
            if closed && running.is_empty() {
                return;
            }
            tokio::select! {
                biased;
                () = self.shared.stopped.notified(), if !self.shared.stopping() => {}
                Some((lane, h, offset, done)) = running.next(), if !running.is_empty() => {
                    idle[lane] = Some(h);
                    if done {
                        self.shared.completed.fetch_add(1, Ordering::AcqRel);
                        if let Some(w) = order.done(offset) {
                            self.publish_watermark(w);
                        }
                    }
                }
                batch = rx.recv(), if !closed => match batch {
                    Some(records) => {
                        for r in records {
                            order.push(r.offset);
                            let lane = self.lane_of(&r);
                            queues[lane].push_back(r);
                        }
                    }
                    None => closed = true,
                },
            }
            if self.shared.stopping() {
                // Revoked or shutting down hard: finish what runs, start nothing new.
                queues.iter_mut().for_each(VecDeque::clear);
                closed = true;
                rx.close();
            }
        }
    }

    /// Decodes `record` into a message.
    async fn message(&self, record: Record) -> Message {
        // The record is ours: its header keys move and the values share the fetch buffer,
        // which the record's value holds for as long as the message lives anyway.
        let headers: Headers = record
            .headers
            .into_iter()
            .map(|h| Header {
                key: h.key,
                value: h.value,
            })
            .collect();
        let mut msg = Message::new(Arc::clone(&self.topic), self.partition, record.offset)
            .with_timestamp_ms(record.timestamp);
        if let Some(g) = &self.group {
            msg = msg.with_group(Arc::clone(g));
        }
        if let Some(k) = record.key {
            msg = msg.with_key(k);
        }
        let decoded = match (&self.codec, &record.value) {
            (None, _) => None,
            (Some(_), None) => Some(Err(
                "null value (a tombstone): no event to decode".to_owned()
            )),
            (Some(codec), Some(value)) => {
                let ctx = CodecContext::new(&self.topic).at(self.partition, record.offset);
                Some(
                    codec
                        .deserialize(&ctx, &headers, value)
                        .await
                        .map_err(|e| gregor_handler::chain(&e)),
                )
            }
        };
        if let Some(v) = record.value {
            msg = msg.with_value(v);
        }
        msg = msg.with_headers(headers);
        match decoded {
            None => msg,
            Some(Ok(event)) => msg.with_event(event),
            Some(Err(why)) => {
                self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                msg.with_decode_error(why)
            }
        }
    }

    /// Handles one record until the stack answers an outcome, delivering it again after a
    /// failure or deferral. Returns whether it is done (false only when stopped first).
    async fn handle(&self, mut handler: BoxHandler, record: Record) -> (BoxHandler, bool) {
        let msg = self.message(record).await;
        let mut tally = Tally::default();
        let done = self.deliver(&mut handler, msg, &mut tally).await;
        tally.flush(&self.counters);
        (handler, done)
    }

    async fn deliver(&self, handler: &mut BoxHandler, mut msg: Message, tally: &mut Tally) -> bool {
        let (mut backoff, max) = self.redelivery;
        loop {
            let result = match handler.ready().await {
                Ok(h) => h.call(msg.clone()).await,
                Err(e) => Err(e),
            };
            tally.retries(msg.retries());
            let err = match result {
                Ok(outcome) => {
                    tally.done(outcome);
                    return true;
                }
                Err(e) => e,
            };
            tally.redelivery();
            // Visible at once: a record delivered again may wait here a long time.
            tally.flush(&self.counters);
            let wait = err.retry_after().unwrap_or(backoff);
            backoff = (backoff * 2).min(max);
            tracing::warn!(
                topic = %self.topic,
                partition = self.partition,
                offset = msg.offset(),
                class = %err.class(),
                error = %gregor_handler::chain(&err),
                ?wait,
                "the handler stack failed; the record will be delivered again (offset not committed)"
            );
            if !self.sleep_unless_stopped(wait).await {
                return false;
            }
            msg = msg.redeliver();
        }
    }

    /// Sleeps; false if the task was told to stop meanwhile.
    async fn sleep_unless_stopped(&self, wait: Duration) -> bool {
        if self.shared.stopping() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => !self.shared.stopping(),
            () = self.shared.stopped.notified() => false,
        }
    }

    async fn run_batch(
        &self,
        mut handler: BoxBatchHandler,
        max: usize,
        mut fallback: Option<BoxHandler>,
        rx: &mut mpsc::UnboundedReceiver<Vec<Record>>,
    ) {
        let mut pending: VecDeque<Record> = VecDeque::new();
        loop {
            if pending.is_empty() {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    () = self.shared.stopped.notified(), if !self.shared.stopping() => None,
                };
                match next {
                    Some(records) => pending.extend(records),
                    None => return,
                }
            }
            // Take whatever else is already queued, up to the batch size.
            while pending.len() < max {
                match rx.try_recv() {
                    Ok(records) => pending.extend(records),
                    Err(_) => break,
                }
            }
            if self.shared.stopping() {
                return;
            }
            let take = pending.len().min(max.max(1));
            let mut messages = Vec::with_capacity(take);
            for record in pending.drain(..take) {
                messages.push(self.message(record).await);
            }
            if !self
                .deliver_batch(&mut handler, fallback.as_mut(), messages)
                .await
            {
                return;
            }
        }
    }

    /// Delivers a batch; on a failure at index i, records before i are done, record i goes to
    /// the fallback stack (or is delivered again), and the rest follow as the next batch.
    async fn deliver_batch(
        &self,
        handler: &mut BoxBatchHandler,
        mut fallback: Option<&mut BoxHandler>,
        mut messages: Vec<Message>,
    ) -> bool {
        let (mut backoff, max) = self.redelivery;
        while !messages.is_empty() {
            let batch = Batch::new(Arc::clone(&self.topic), self.partition, messages.clone());
            let result = match handler.ready().await {
                Ok(h) => h.call(batch).await,
                Err(e) => Err(e),
            };
            let failed_at = match result {
                Ok(()) => messages.len(),
                Err(e) => e.index.min(messages.len()),
            };
            for m in &messages[..failed_at] {
                self.done_one(m.offset(), Outcome::Processed);
            }
            if failed_at == messages.len() {
                return true;
            }
            let failed = messages[failed_at].clone();
            let done = match fallback.as_deref_mut() {
                Some(stack) => {
                    let mut tally = Tally::default();
                    let done = self.deliver(stack, failed.clone(), &mut tally).await;
                    tally.flush(&self.counters);
                    done
                }
                None => {
                    self.counters.redeliveries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        topic = %self.topic,
                        partition = self.partition,
                        offset = failed.offset(),
                        ?backoff,
                        "the batch handler failed at this record; delivering from it again"
                    );
                    if !self.sleep_unless_stopped(backoff).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(max);
                    messages = messages.split_off(failed_at);
                    continue;
                }
            };
            if !done {
                return false;
            }
            self.shared.completed.fetch_add(1, Ordering::AcqRel);
            self.publish_watermark(failed.offset() + 1);
            messages = messages.split_off(failed_at + 1);
        }
        true
    }

    fn done_one(&self, offset: i64, outcome: Outcome) {
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        self.counters.outcome(outcome);
        self.shared.completed.fetch_add(1, Ordering::AcqRel);
        self.publish_watermark(offset + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_contiguous_completed_prefix() {
        let mut o = Order::default();
        for off in [5, 6, 7, 8] {
            o.push(off);
        }
        assert_eq!(o.done(7), None);
        assert_eq!(o.done(5), Some(6));
        assert_eq!(o.done(6), Some(8));
        assert_eq!(o.done(8), Some(9));
        assert!(o.entries.is_empty());
        // An offset never pushed (already revoked) changes nothing.
        assert_eq!(o.done(100), None);
    }
}
