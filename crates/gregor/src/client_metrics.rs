//! The producer's and the consumer's own statistics as Prometheus metrics.
//!
//! [`ProducerStats`] and the consumer's [`Stats`] are plain structs; these collectors put them on
//! a `prometheus_client` [`Registry`] (the one [`MetricsServer`](crate::telemetry::MetricsServer)
//! serves) so they reach a dashboard without the service copying numbers around.
//!
//! - [`ProducerMetrics`] reads [`Producer::stats`] at every scrape: it holds a clone of the
//!   producer (cheap: producers share one state), so nothing needs updating.
//! - [`ConsumerMetrics`] shows the last [`Stats`] handed to [`ConsumerMetrics::observe`]: a
//!   consumer is owned by its poll loop, so the loop reports after each poll (the
//!   [`Worker`](crate::Worker) does it every second when built with
//!   [`WorkerBuilder::consumer_metrics`](crate::WorkerBuilder::consumer_metrics)).
//!
//! Names start with `gregor_producer_` and `gregor_consumer_` so they never collide with the
//! classic `kafka_*` series of the handler's metrics layer. Totals are counters (they only grow
//! for the life of the client), queue sizes and lag are gauges, produce latency is a histogram in
//! seconds with power-of-two buckets from 1 µs to 33 s.

use std::sync::{Arc, Mutex, PoisonError};

use gregor_client::{Producer, ProducerStats, Stats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets: 2^0 .. 2^25 microseconds (1 µs .. 33.5 s); slower
/// observations count only in `+Inf`.
const LATENCY_BUCKETS: u32 = 26;

/// Puts a producer's [`ProducerStats`] on a registry, read at every scrape.
///
/// ```no_run
/// # async fn run(producer: gregor::client::Producer) {
/// use prometheus_client::registry::Registry;
///
/// let mut registry = Registry::default();
/// gregor::ProducerMetrics::register(&mut registry, producer.clone());
/// # }
/// ```
#[derive(Clone)]
pub struct ProducerMetrics {
    producer: Producer,
}

impl std::fmt::Debug for ProducerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerMetrics").finish_non_exhaustive()
    }
}

impl ProducerMetrics {
    /// Registers the producer's statistics on `registry`.
    pub fn register(registry: &mut Registry, producer: Producer) {
        registry.register_collector(Box::new(ProducerMetrics { producer }));
    }
}

impl Collector for ProducerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        encode_producer(&self.producer.stats(), &mut encoder)
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn encode_producer(
    s: &ProducerStats,
    e: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    counter(
        e,
        "gregor_producer_records",
        "Records acknowledged by the broker.",
        s.records,
    )?;
    counter(
        e,
        "gregor_producer_bytes",
        "Bytes of key, value and headers of acknowledged records, before compression.",
        s.bytes,
    )?;
    counter(
        e,
        "gregor_producer_batches",
        "Produce requests that succeeded.",
        s.batches,
    )?;
    counter(
        e,
        "gregor_producer_errors",
        "Records that failed for good.",
        s.errors,
    )?;
    counter(
        e,
        "gregor_producer_retries",
        "Batches sent again after a retriable error.",
        s.retries,
    )?;
    counter(
        e,
        "gregor_producer_headers_merged",
        "Headers dropped because a record had two with the same key.",
        s.headers_merged,
    )?;
    gauge(
        e,
        "gregor_producer_queued_records",
        "Records accepted and not yet delivered or failed.",
        clamp(s.queued_records),
    )?;
    gauge(
        e,
        "gregor_producer_queued_bytes",
        "Estimated encoded bytes of the queued records.",
        clamp(s.queued_bytes),
    )?;

    {
        let mut m = e.encode_descriptor(
            "gregor_producer_partition_records",
            "Records acknowledged, per topic and partition.",
            None,
            MetricType::Counter,
        )?;
        for ((topic, partition), p) in &s.partitions {
            let labels = [
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            ConstCounter::new(p.records).encode(m.encode_family(&labels)?)?;
        }
    }
    {
        let mut m = e.encode_descriptor(
            "gregor_producer_partition_errors",
            "Records that failed, per topic and partition.",
            None,
            MetricType::Counter,
        )?;
        for ((topic, partition), p) in &s.partitions {
            let labels = [
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            ConstCounter::new(p.errors).encode(m.encode_family(&labels)?)?;
        }
    }

    let (buckets, sum, count) = latency_buckets(s);
    let mut m = e.encode_descriptor(
        "gregor_producer_latency_seconds",
        "From the send call to the broker's acknowledgement, per record.",
        None,
        MetricType::Histogram,
    )?;
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
}

/// Per-bucket counts at fixed bounds (the encoder makes them cumulative), the sum in seconds,
/// and the count.
fn latency_buckets(s: &ProducerStats) -> (Vec<(f64, u64)>, f64, u64) {
    let mut counts = vec![0_u64; LATENCY_BUCKETS as usize + 1];
    for (bound, n) in s.latency.buckets() {
        let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX).max(1);
        let index = (micros.ilog2() as usize).min(LATENCY_BUCKETS as usize);
        counts[index] += n;
    }
    let buckets = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let bound = if i < LATENCY_BUCKETS as usize {
                (1_u64 << i) as f64 / 1e6
            } else {
                f64::INFINITY
            };
            (bound, n)
        })
        .collect();
    let count = s.latency.count();
    let sum = s.latency.mean().as_secs_f64() * count as f64;
    (buckets, sum, count)
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Puts a consumer's [`Stats`] on a registry: the scrape shows the last snapshot given to
/// [`observe`](ConsumerMetrics::observe), labelled with the consumer group.
///
/// ```no_run
/// # async fn run(mut consumer: gregor::client::Consumer) -> gregor::client::Result<()> {
/// use prometheus_client::registry::Registry;
///
/// let mut registry = Registry::default();
/// let metrics = gregor::ConsumerMetrics::register(&mut registry, "order-processor");
/// loop {
///     let records = consumer.poll(std::time::Duration::from_secs(1)).await?;
///     // ... handle the records ...
///     metrics.observe(&consumer.stats());
/// #   if records.is_empty() { break Ok(()); }
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    inner: Arc<ConsumerCollector>,
}

#[derive(Debug)]
struct ConsumerCollector {
    group: String,
    last: Mutex<Option<Stats>>,
}

impl ConsumerMetrics {
    /// Registers an (empty until observed) consumer on `registry`; `group` becomes the
    /// `consumer_group` label (use `""` for a consumer without a group).
    pub fn register(registry: &mut Registry, group: &str) -> ConsumerMetrics {
        let inner = Arc::new(ConsumerCollector {
            group: group.to_owned(),
            last: Mutex::new(None),
        });
        registry.register_collector(Box::new(Arc::clone(&inner)));
        ConsumerMetrics { inner }
    }

    /// Makes `stats` what the next scrape shows.
    pub fn observe(&self, stats: &Stats) {
        *self
            .inner
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(stats.clone());
    }
}

impl Collector for ConsumerCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(s) = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return Ok(());
        };
        let group = [("consumer_group", self.group.as_str())];
        let totals: [(&str, &str, u64); 7] = [
            (
                "gregor_consumer_records",
                "Records handed to the application.",
                s.records,
            ),
            (
                "gregor_consumer_bytes",
                "Bytes of record batches fetched (compressed size).",
                s.bytes,
            ),
            (
                "gregor_consumer_fetches",
                "Fetch responses received.",
                s.fetches,
            ),
            (
                "gregor_consumer_rebalances",
                "Completed joins this member took part in.",
                s.rebalances,
            ),
            (
                "gregor_consumer_lost",
                "Times the membership was lost (session expired, generation fenced).",
                s.lost,
            ),
            ("gregor_consumer_commits", "Successful commits.", s.commits),
            (
                "gregor_consumer_commit_failures",
                "Failed commits.",
                s.commit_failures,
            ),
        ];
        for (name, help, value) in totals {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(m.encode_family(&group)?)?;
        }
        {
            let mut m = e.encode_descriptor(
                "gregor_consumer_commit_latency_seconds",
                "Sum of commit latencies (with gregor_consumer_commits: the mean).",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(s.commit_latency_total.as_secs_f64())
                .encode(m.encode_family(&group)?)?;
        }
        {
            let mut m = e.encode_descriptor(
                "gregor_consumer_commit_latency_max_seconds",
                "Highest commit latency seen.",
                None,
                MetricType::Gauge,
            )?;
            let max = s.commit_latency_max.unwrap_or_default().as_secs_f64();
            ConstGauge::new(max).encode(m.encode_family(&group)?)?;
        }
        {
            let mut m = e.encode_descriptor(
                "gregor_consumer_lag_total",
                "Sum of the lag of the assigned partitions whose lag is known.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(s.total_lag).encode(m.encode_family(&group)?)?;
        }
        let mut m = e.encode_descriptor(
            "gregor_consumer_partition_lag",
            "High watermark minus position, per assigned partition.",
            None,
            MetricType::Gauge,
        )?;
        for p in &s.partitions {
            let Some(lag) = p.lag else { continue };
            let labels = [
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
                ("consumer_group", self.group.clone()),
            ];
            ConstGauge::new(lag).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
