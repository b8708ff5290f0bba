use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower::Layer;

use super::service::MetricsService;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Produced {
    pub(super) topic: String,
    pub(super) status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Partition {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) consumer_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Duration {
    pub(super) topic: String,
    pub(super) event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Topic {
    pub(super) topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Handled {
    pub(super) topic: String,
    pub(super) outcome: &'static str,
}

pub(super) type Histograms = Family<Duration, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub(super) struct Families {
    pub(super) produced: Family<Produced, Counter>,
    pub(super) consumed: Family<Partition, Counter>,
    pub(super) lag: Family<Partition, Gauge>,
    pub(super) duration: Histograms,
    pub(super) retries: Family<Topic, Counter>,
    pub(super) dead_lettered: Family<Topic, Counter>,
    pub(super) handled: Family<Handled, Counter>,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metric families of a gregor service (see the module docs for names and labels).
/// Cloning shares them.
///
/// ```
/// use prometheus_client::registry::Registry;
/// use gregor_handler::metrics::Metrics;
///
/// let mut registry = Registry::default();
/// let metrics = Metrics::register(&mut registry);
/// metrics.produced("commerce.orders.created", true);
/// metrics.set_lag("commerce.orders.created", 0, "order-processor", 12);
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
/// assert!(text.contains(r#"kafka_messages_produced_total{topic="commerce.orders.created",status="success"} 1"#));
/// assert!(text.contains(r#"kafka_consumer_lag{topic="commerce.orders.created",partition="0",consumer_group="order-processor"} 12"#));
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(super) families: Arc<Families>,
}

impl Metrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let families = Families {
            produced: Family::default(),
            consumed: Family::default(),
            lag: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            retries: Family::default(),
            dead_lettered: Family::default(),
            handled: Family::default(),
        };
        registry.register(
            "kafka_messages_produced",
            "Records sent, by topic and status (success, error)",
            families.produced.clone(),
        );
        registry.register(
            "kafka_messages_consumed",
            "Records consumed and handed to the handler stack",
            families.consumed.clone(),
        );
        registry.register(
            "kafka_consumer_lag",
            "Records between the consumer's position and the partition's end",
            families.lag.clone(),
        );
        registry.register(
            "kafka_message_processing_duration_seconds",
            "Time from handing a record to the stack until it is done (retries included)",
            families.duration.clone(),
        );
        registry.register(
            "kafka_message_retries",
            "Retries made by the retry layer",
            families.retries.clone(),
        );
        registry.register(
            "kafka_messages_dead_lettered",
            "Records published to a dead-letter topic",
            families.dead_lettered.clone(),
        );
        registry.register(
            "kafka_messages_handled",
            "Records done, by outcome (processed, filtered, skipped, dead_lettered, duplicate) or failed/deferred",
            families.handled.clone(),
        );
        Metrics {
            families: Arc::new(families),
        }
    }

    /// Counts one record sent to `topic` (`ok` = acknowledged).
    pub fn produced(&self, topic: &str, ok: bool) {
        self.produced_n(topic, ok, 1);
    }

    /// Counts `n` records sent to `topic`.
    pub fn produced_n(&self, topic: &str, ok: bool, n: u64) {
        let labels = Produced {
            topic: topic.to_owned(),
            status: if ok { "success" } else { "error" },
        };
        self.families.produced.get_or_create(&labels).inc_by(n);
    }

    /// Sets the lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, group: &str, lag: i64) {
        let labels = Partition {
            topic: topic.to_owned(),
            partition,
            consumer_group: group.to_owned(),
        };
        self.families.lag.get_or_create(&labels).set(lag);
    }

    /// Drops the lag series of a partition this member no longer owns.
    pub fn remove_lag(&self, topic: &str, partition: i32, group: &str) {
        let labels = Partition {
            topic: topic.to_owned(),
            partition,
            consumer_group: group.to_owned(),
        };
        self.families.lag.remove(&labels);
    }

    /// The layer that counts consumed records, durations, retries and outcomes.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer {
            metrics: self.clone(),
        }
    }
}

/// Counts what passes through: consumed, duration, retries, dead-lettered and outcomes.
/// Put it outside the dead-letter and retry layers so it sees their final results.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService::new(inner, self.metrics.clone())
    }
}
