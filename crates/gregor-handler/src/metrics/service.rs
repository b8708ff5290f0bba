use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tower::Service;

use super::layer::{Duration, Handled, Metrics, Partition, Topic};
use crate::error::{Error, ErrorClass};
use crate::message::{Message, Outcome};

/// Handles of one topic's series, so the hot path does not build label sets.
#[derive(Clone, Debug)]
struct TopicSeries {
    group: Option<Arc<str>>,
    consumed: HashMap<i32, Counter>,
    duration: HashMap<String, Histogram>,
    outcomes: Arc<Outcomes>,
}

/// The per-topic counters a finished call updates (one reference count per call).
#[derive(Debug)]
struct Outcomes {
    retries: Counter,
    dead_lettered: Counter,
    handled: [Counter; 7],
}

const FAILED: usize = 5;
const DEFERRED: usize = 6;

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Processed => 0,
        Outcome::Filtered => 1,
        Outcome::Skipped => 2,
        Outcome::DeadLettered => 3,
        Outcome::Duplicate => 4,
    }
}

const OUTCOME_NAMES: [&str; 7] = [
    "processed",
    "filtered",
    "skipped",
    "dead_lettered",
    "duplicate",
    "failed",
    "deferred",
];

/// The handles the last call used: a partition task calls its own clone of the stack, so
/// nearly every call hits this and looks up nothing.
#[derive(Clone, Debug)]
struct Hot {
    topic: Arc<str>,
    partition: i32,
    group: Option<Arc<str>>,
    event_type: Box<str>,
    consumed: Counter,
    duration: Histogram,
    outcomes: Arc<Outcomes>,
}

impl Hot {
    fn matches(&self, msg: &Message, event_type: &str) -> bool {
        (Arc::ptr_eq(&self.topic, msg.topic_arc()) || *self.topic == *msg.topic())
            && self.partition == msg.partition()
            && self.group.as_deref() == msg.group()
            && *self.event_type == *event_type
    }
}

/// The service [`super::MetricsLayer`] builds.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
    series: HashMap<Arc<str>, TopicSeries>,
    /// Behind its own `Arc`, so a call counts a reference this clone alone touches, not the
    /// shared handles' (every partition task would contend for those cache lines).
    hot: Option<Arc<Hot>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for MetricsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> MetricsService<S> {
    pub(super) fn new(inner: S, metrics: Metrics) -> MetricsService<S> {
        MetricsService {
            inner,
            metrics,
            series: HashMap::new(),
            hot: None,
        }
    }

    fn series(&mut self, msg: &Message) -> &mut TopicSeries {
        let stale = self
            .series
            .get(msg.topic())
            .is_none_or(|s| s.group.as_deref() != msg.group());
        if stale {
            let group: Option<Arc<str>> = msg.group().map(Arc::from);
            let f = &self.metrics.families;
            let topic = msg.topic().to_owned();
            let t = Topic {
                topic: topic.clone(),
            };
            let handled = OUTCOME_NAMES.map(|outcome| {
                f.handled.get_or_create_owned(&Handled {
                    topic: topic.clone(),
                    outcome,
                })
            });
            self.series.insert(
                Arc::clone(msg.topic_arc()),
                TopicSeries {
                    group,
                    consumed: HashMap::new(),
                    duration: HashMap::new(),
                    outcomes: Arc::new(Outcomes {
                        retries: f.retries.get_or_create_owned(&t),
                        dead_lettered: f.dead_lettered.get_or_create_owned(&t),
                        handled,
                    }),
                },
            );
        }
        self.series
            .get_mut(msg.topic())
            .unwrap_or_else(|| unreachable!("inserted above"))
    }
}

impl<S> Service<Message> for MetricsService<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let event_type = msg.event_type().unwrap_or("unknown");
        if !self
            .hot
            .as_ref()
            .is_some_and(|h| h.matches(&msg, event_type))
        {
            self.hot = Some(Arc::new(self.lookup(&msg, event_type)));
        }
        let Some(hot) = &self.hot else {
            unreachable!("set above")
        };
        hot.consumed.inc();
        let done = Done {
            hot: Arc::clone(hot),
            started: Instant::now(),
            msg: msg.clone(),
        };
        MetricsFuture {
            inner: self.inner.call(msg),
            done: Some(done),
        }
    }
}

impl<S> MetricsService<S> {
    /// The handles for `msg`'s topic, partition, group and event type, from the per-topic
    /// cache, created in the families the first time.
    fn lookup(&mut self, msg: &Message, event_type: &str) -> Hot {
        let families = Arc::clone(&self.metrics.families);
        let series = self.series(msg);
        let partition = msg.partition();
        let consumed = series
            .consumed
            .entry(partition)
            .or_insert_with(|| {
                families.consumed.get_or_create_owned(&Partition {
                    topic: msg.topic().to_owned(),
                    partition,
                    consumer_group: msg.group().unwrap_or("").to_owned(),
                })
            })
            .clone();
        let duration = match series.duration.get(event_type) {
            Some(h) => h.clone(),
            None => {
                let h = families.duration.get_or_create_owned(&Duration {
                    topic: msg.topic().to_owned(),
                    event_type: event_type.to_owned(),
                });
                series.duration.insert(event_type.to_owned(), h.clone());
                h
            }
        };
        Hot {
            topic: Arc::clone(msg.topic_arc()),
            partition,
            group: series.group.clone(),
            event_type: event_type.into(),
            consumed,
            duration,
            outcomes: Arc::clone(&series.outcomes),
        }
    }
}

struct Done {
    hot: Arc<Hot>,
    started: Instant,
    msg: Message,
}

impl Done {
    fn record(self, result: &Result<Outcome, Error>) {
        let outcomes = &self.hot.outcomes;
        self.hot
            .duration
            .observe(self.started.elapsed().as_secs_f64());
        let retries = u64::from(self.msg.retries());
        if retries > 0 {
            outcomes.retries.inc_by(retries);
        }
        let index = match result {
            Ok(o) => {
                if *o == Outcome::DeadLettered {
                    outcomes.dead_lettered.inc();
                }
                outcome_index(*o)
            }
            Err(e) if e.class() == ErrorClass::Deferred => DEFERRED,
            Err(_) => FAILED,
        };
        outcomes.handled[index].inc();
    }
}

pin_project! {
    /// The future of [`MetricsService`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        done: Option<Done>,
    }
}

impl<F, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r.map_err(Into::into),
        };
        if let Some(done) = this.done.take() {
            done.record(&result);
        }
        Poll::Ready(result)
    }
}

impl<F> std::fmt::Debug for MetricsFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsFuture").finish_non_exhaustive()
    }
}
