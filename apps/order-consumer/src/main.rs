//! `order-consumer`: the order pipeline's consumer.

mod config;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use gregor::client::Producer;
use gregor::event::OrderEvent;
use gregor::handler::dead_letter::{DeadLetterLayer, TopicName};
use gregor::handler::filter::FilterLayer;
use gregor::handler::metrics::Metrics;
use gregor::handler::retry::{BudgetAction, RetryLayer};
use gregor::handler::{Error, Fallback, Message, Router, Stack, handler_fn};
use gregor::telemetry::MetricsServer;
use gregor::{ProducerPublisher, Worker};

use config::Format;

/// Consumes order events as a member of consumer group order-processor: a router sends
/// order.created, order.updated and order.cancelled to their handlers; failures are retried
/// (3 attempts, 1 s backoff doubling); what still fails, and what cannot be decoded, goes to
/// the dead-letter topic with the reason in its headers. Offsets are committed only after a
/// record is handled or dead-lettered (at-least-once).
///
/// Kafka settings use Kafka's property names and come, later winning, from --config (a Java
/// .properties file), KAFKA_* environment variables (KAFKA_BOOTSTRAP_SERVERS is
/// bootstrap.servers), -X key=value, and the flags below.
///
/// Examples:
///
///   order-consumer -b 127.0.0.1:9092
///
///   order-consumer --group order-audit -X auto.offset.reset=latest --metrics-port 9470
///
///   order-consumer --codecs codecs.yaml --schema-registry-url http://127.0.0.1:8081
///
/// Prometheus metrics are served at http://HOST:PORT/metrics (--metrics-host, default 127.0.0.1;
/// --metrics-port). Ctrl-C (or SIGTERM) stops fetching, finishes in-flight records, commits,
/// leaves the group and prints the totals.
#[derive(Debug, Parser)]
#[command(name = "order-consumer", version, verbatim_doc_comment)]
struct Args {
    /// Kafka brokers, host:port, comma-separated (= bootstrap.servers).
    #[arg(short = 'b', long, value_name = "HOST:PORT")]
    bootstrap_servers: Option<String>,
    /// Any consumer or producer property as KEY=VALUE, repeatable: -X max.poll.records=200.
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A Java .properties file of Kafka properties (environment and flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Consumer group (= group.id).
    #[arg(short = 'g', long, default_value = "order-processor")]
    group: String,
    /// Topics are PREFIX.created, PREFIX.updated and PREFIX.cancelled.
    #[arg(long, default_value = "commerce.orders", value_name = "PREFIX")]
    topic_prefix: String,
    /// Dead-letter topic (default PREFIX.dlq).
    #[arg(long, value_name = "TOPIC")]
    dlq_topic: Option<String>,
    /// Payload format of topics the --codecs file does not cover.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Codec per topic (YAML; see docs/guides/schemas.md), e.g. Avro on one topic only.
    #[arg(long, value_name = "FILE")]
    codecs: Option<PathBuf>,
    /// Schema registry (Confluent API) for Avro topics.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", value_name = "URL")]
    schema_registry_url: Option<String>,
    /// Attempts per record, the first included.
    #[arg(long, default_value_t = 3)]
    retry_attempts: u32,
    /// First retry backoff; each next one doubles (with ±20 % jitter).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    retry_backoff_ms: u64,
    /// Time limit of one handler attempt.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    handler_timeout_ms: u64,
    /// Records of one partition handled at once, ordered per key (1: strictly in order).
    #[arg(long, default_value_t = 1, value_name = "N")]
    key_concurrency: usize,
    /// Event types handled; other types are filtered (committed, not handled).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "order.created,order.updated,order.cancelled"
    )]
    allow_types: Vec<String>,
    /// Serve Prometheus /metrics on this port (0: a free port).
    #[arg(long, default_value_t = 9464)]
    metrics_port: u16,
    /// Address /metrics listens on: loopback by default; 0.0.0.0 to let a Prometheus in a
    /// container (deployments/docker-compose.yml) reach it.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    metrics_host: std::net::IpAddr,
    /// Do not serve /metrics.
    #[arg(long)]
    no_metrics: bool,
    /// Span export: none, stdout, or an OTLP/HTTP traces URL (http://127.0.0.1:4318/v1/traces).
    #[arg(long, default_value = "none", value_name = "none|stdout|URL")]
    traces: String,
    /// Print the final totals as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// Fails while the event's `fail_times` metadata is at least the attempt number: the
/// producer's --transient orders, so the retry path can be watched.
fn simulated_outage(msg: &Message) -> Result<(), Error> {
    let fail_times: u32 = msg
        .event()?
        .metadata
        .get("fail_times")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if msg.attempt() <= fail_times {
        return Err(Error::retriable(format!(
            "simulated outage of the inventory service (attempt {} of the {fail_times} that fail)",
            msg.attempt()
        )));
    }
    Ok(())
}

fn check(order: &OrderEvent) -> Result<(), Error> {
    if order.items.is_empty() {
        return Err(Error::validation(format!(
            "order {} has no items",
            order.order_id
        )));
    }
    if order.items_total() != Some(order.amount) {
        return Err(Error::validation(format!(
            "order {}: amount {} is not the sum of its items",
            order.order_id, order.amount
        )));
    }
    Ok(())
}

fn count(counts: &Counts, event_type: &str) {
    if let Ok(mut c) = counts.lock() {
        *c.entry(event_type.to_owned()).or_default() += 1;
    }
}

fn router(counts: &Counts) -> Router {
    let c = Arc::clone(counts);
    let created = handler_fn(move |msg: Message| {
        let c = Arc::clone(&c);
        async move {
            simulated_outage(&msg)?;
            let order: OrderEvent = msg.decode()?;
            check(&order)?;
            tracing::debug!(order = %order.order_id, user = %order.user_id, amount = %order.amount, "order created");
            count(&c, "order.created");
            Ok::<(), Error>(())
        }
    });
    let c = Arc::clone(counts);
    let updated = handler_fn(move |msg: Message| {
        let c = Arc::clone(&c);
        async move {
            simulated_outage(&msg)?;
            // An update carries the order as it is now (status paid, shipped, ...).
            let order: OrderEvent = serde_json::from_value(msg.event()?.data.clone())
                .map_err(|e| Error::validation(format!("order.updated data: {e}")))?;
            check(&order)?;
            tracing::debug!(order = %order.order_id, status = order.status.as_str(), "order updated");
            count(&c, "order.updated");
            Ok::<(), Error>(())
        }
    });
    let c = Arc::clone(counts);
    let cancelled = handler_fn(move |msg: Message| {
        let c = Arc::clone(&c);
        async move {
            simulated_outage(&msg)?;
            let order: OrderEvent = msg.decode()?;
            tracing::debug!(order = %order.order_id, "order cancelled");
            count(&c, "order.cancelled");
            Ok::<(), Error>(())
        }
    });
    Router::new()
        .route("order.created", created)
        .route("order.updated", updated)
        .route("order.cancelled", cancelled)
        .fallback(Fallback::DeadLetter)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let _guard = match gregor::telemetry::init_tracing(&config::tracing_config(
        "order-consumer",
        &args.traces,
    )) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("order-consumer: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("order-consumer: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let mut client = config::client_config(args.config.as_ref(), &args.properties)?;
    if let Some(b) = &args.bootstrap_servers {
        client = client.set("bootstrap.servers", b.as_str())?;
    }
    client = client.set("group.id", args.group.as_str())?;
    if !client.is_set("auto.offset.reset") {
        client = client.set("auto.offset.reset", "earliest")?;
    }
    let topics: Vec<String> = ["created", "updated", "cancelled"]
        .iter()
        .map(|s| format!("{}.{s}", args.topic_prefix))
        .collect();
    let dlq = args
        .dlq_topic
        .clone()
        .unwrap_or_else(|| format!("{}.dlq", args.topic_prefix));
    let codecs = config::codecs(
        args.codecs.as_ref(),
        args.format,
        args.schema_registry_url.as_deref(),
    )?;
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    codecs
        .prepare(&refs)
        .await
        .context("preparing codecs (schema lookups)")?;

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    // The consumer's own statistics (gregor_consumer_*: fetches, rebalances, commits, lag).
    let consumer_metrics = gregor::ConsumerMetrics::register(&mut registry, &args.group);
    let producer = Arc::new(
        Producer::connect(&client)
            .await
            .context("connecting the dead-letter producer")?,
    );
    let counts: Counts = Arc::default();
    // Retries stay within the group's poll interval: past it, the record is dead-lettered.
    let poll_budget = client
        .get("max.poll.interval.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(240), |ms| {
            Duration::from_millis(ms * 8 / 10)
        });
    let handler = Stack::new(router(&counts))
        .metrics(metrics.layer())
        .tracing()
        .dead_letter(
            DeadLetterLayer::new(Arc::new(
                ProducerPublisher::new(Arc::clone(&producer)).metrics(metrics.clone()),
            ))
            .topic(TopicName::Fixed(dlq.clone())),
        )
        .retry(
            RetryLayer::new()
                .max_attempts(args.retry_attempts)
                .backoff(Duration::from_millis(args.retry_backoff_ms), 2.0)
                .poll_budget(poll_budget, BudgetAction::DeadLetter),
        )
        .timeout(Duration::from_millis(args.handler_timeout_ms))
        .filter(FilterLayer::new().allow_types(args.allow_types.iter().cloned()))
        .build();

    let server = if args.no_metrics {
        None
    } else {
        let addr = SocketAddr::new(args.metrics_host, args.metrics_port);
        Some(MetricsServer::start(addr, Arc::new(registry)).await?)
    };
    let worker = Worker::builder(client)
        .topics(topics.iter().cloned())
        .codecs(Arc::new(codecs))
        .handler(handler)
        .metrics(metrics)
        .consumer_metrics(consumer_metrics)
        .key_concurrency(args.key_concurrency)
        .build()
        .await
        .context("starting the consumer")?;
    eprintln!(
        "order-consumer: group {}, topics {}, dead letters to {dlq}{}",
        args.group,
        topics.join(", "),
        server
            .as_ref()
            .map(|s| format!(", metrics http://{}/metrics", s.local_addr()))
            .unwrap_or_default()
    );
    let stats = worker.run_until_signal().await?;
    let by_type = counts.lock().map(|c| c.clone()).unwrap_or_default();
    eprintln!("order-consumer: stopped. {stats}");
    for (t, n) in &by_type {
        eprintln!("  {t}: {n}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "records": stats.records,
                "bytes": stats.bytes,
                "processed": stats.processed,
                "filtered": stats.filtered,
                "skipped": stats.skipped,
                "dead_lettered": stats.dead_lettered,
                "duplicates": stats.duplicates,
                "retries": stats.retries,
                "redeliveries": stats.redeliveries,
                "decode_errors": stats.decode_errors,
                "lag": stats.lag,
                "commits": stats.commits,
                "by_type": by_type,
                "dlq_topic": dlq,
            })
        );
    }
    if let Some(s) = server {
        s.shutdown().await;
    }
    if let Ok(p) = Arc::try_unwrap(producer) {
        p.close()
            .await
            .context("closing the dead-letter producer")?;
    }
    Ok(())
}
