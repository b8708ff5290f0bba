//! `order-producer`: order events to Kafka, at a rate or a count.

mod config;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use futures::stream::{FuturesUnordered, StreamExt};
use gregor::client::{DeliveryFuture, Producer, ProducerRecord};
use gregor::codec::{CodecRegistry, Context};
use gregor::event::{Event, Headers, Item, Money, OrderEvent, OrderStatus, TypedEvent};
use gregor::handler::metrics::Metrics;
use gregor::telemetry::MetricsServer;

use config::Format;

/// Produces order events to Kafka: order.created, order.updated and order.cancelled, keyed by
/// user id so one user's orders stay in order.
///
/// Kafka settings use Kafka's property names and come, later winning, from --config (a Java
/// .properties file), KAFKA_* environment variables (KAFKA_BOOTSTRAP_SERVERS is
/// bootstrap.servers), -X key=value, and the flags below.
///
/// Examples:
///
///   order-producer -b 127.0.0.1:9092 --count 1000
///
///   order-producer --rate 200 --count 0 -X linger.ms=10 -X compression.type=lz4
///
///   order-producer --format avro --schema-registry-url http://127.0.0.1:8081
///
/// Ctrl-C (or SIGTERM) stops sending, waits for every acknowledgement and prints the totals.
#[derive(Debug, Parser)]
#[command(name = "order-producer", version, verbatim_doc_comment)]
struct Args {
    /// Kafka brokers, host:port, comma-separated (= bootstrap.servers).
    #[arg(short = 'b', long, value_name = "HOST:PORT")]
    bootstrap_servers: Option<String>,
    /// Any producer property as KEY=VALUE, repeatable: -X acks=all -X linger.ms=10.
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A Java .properties file of Kafka properties (environment and flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Orders to send; 0 sends until stopped.
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: u64,
    /// Orders per second; 0 sends as fast as the producer accepts them.
    #[arg(short = 'r', long, default_value_t = 0.0)]
    rate: f64,
    /// Topics are PREFIX.created, PREFIX.updated and PREFIX.cancelled.
    #[arg(long, default_value = "commerce.orders", value_name = "PREFIX")]
    topic_prefix: String,
    /// Payload format of topics the --codecs file does not cover.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Codec per topic (YAML; see docs/guides/schemas.md), e.g. Avro on one topic only.
    #[arg(long, value_name = "FILE")]
    codecs: Option<PathBuf>,
    /// Schema registry (Confluent API) for Avro topics.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", value_name = "URL")]
    schema_registry_url: Option<String>,
    /// Distinct users (record keys).
    #[arg(long, default_value_t = 100)]
    users: u32,
    /// Percent of orders that are updates, and of cancellations (the rest are created).
    #[arg(long, default_value_t = 20)]
    updated_percent: u32,
    /// Percent of orders that are cancellations.
    #[arg(long, default_value_t = 10)]
    cancelled_percent: u32,
    /// Serve Prometheus /metrics on this port (0: a free port; --no-metrics: none).
    #[arg(long, default_value_t = 9465)]
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
    /// Also send this many records that are not JSON (poison, for the dead-letter path).
    #[arg(long, default_value_t = 0, value_name = "N")]
    poison_json: u64,
    /// Also send this many records framed with a schema id no registry knows (poison).
    #[arg(long, default_value_t = 0, value_name = "N")]
    poison_schema: u64,
    /// Mark this many of the orders so the consumer's handler fails twice, then succeeds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    transient: u64,
    /// Also send this many events of a type the consumer does not handle (order.viewed).
    #[arg(long, default_value_t = 0, value_name = "N")]
    unrouted: u64,
    /// Print the final totals as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

/// A record to send, and what it is.
struct Planned {
    topic: String,
    key: String,
    event: Option<Event>,
    raw: Option<Vec<u8>>,
}

fn order(i: u64, users: u32, status: OrderStatus) -> OrderEvent {
    let price =
        Money::from_cents(500 + i64::try_from(i % 5000).unwrap_or(0)).unwrap_or(Money::ZERO);
    let quantity = u32::try_from(1 + i % 3).unwrap_or(1);
    OrderEvent {
        order_id: format!("o-{i}"),
        user_id: format!("u-{}", i % u64::from(users.max(1))),
        status,
        amount: price.checked_mul(i64::from(quantity)).unwrap_or(price),
        items: vec![Item {
            product_id: format!("p-{}", i % 97),
            quantity,
            price,
        }],
        created_at: gregor::event::time::now(),
    }
}

/// The i-th record of the run: spread poison and unrouted records among the orders.
fn plan(args: &Args, i: u64, total: u64) -> Result<Planned> {
    let p = &args.topic_prefix;
    let extras = [
        (args.poison_json, 1u8),
        (args.poison_schema, 2),
        (args.unrouted, 3),
    ];
    // Extra records sit at evenly spaced positions: extra k of kind j at a fixed stride.
    let n_extra: u64 = extras.iter().map(|(n, _)| n).sum();
    if n_extra > 0 && total > 0 {
        let stride = (total / (n_extra + 1)).max(1);
        if i % stride == stride / 2 {
            let k = i / stride;
            let mut acc = 0;
            for (n, kind) in extras {
                if k < acc + n {
                    return Ok(extra(p, i, kind));
                }
                acc += n;
            }
        }
    }
    let roll = u32::try_from(i.wrapping_mul(2_654_435_761) % 100).unwrap_or(0);
    let (status, suffix, event_type) = if roll < args.cancelled_percent {
        (OrderStatus::Cancelled, "cancelled", "order.cancelled")
    } else if roll < args.cancelled_percent + args.updated_percent {
        (OrderStatus::Paid, "updated", "order.updated")
    } else {
        (OrderStatus::Created, "created", "order.created")
    };
    let o = order(i, args.users, status);
    let data = serde_json::to_value(&o).context("order to JSON")?;
    let event = Event::new(event_type, "order-producer", data);
    Ok(Planned {
        topic: format!("{p}.{suffix}"),
        key: o.key().to_owned(),
        event: Some(event),
        raw: None,
    })
}

fn extra(prefix: &str, i: u64, kind: u8) -> Planned {
    match kind {
        1 => Planned {
            topic: format!("{prefix}.created"),
            key: "u-poison".into(),
            event: None,
            raw: Some(format!("{{\"id\": \"poison-{i}\", \"type\": order.created").into_bytes()),
        },
        2 => {
            // Confluent framing: magic 0, schema id 2^31-1 (unknown), then a datum.
            let mut raw = vec![0u8, 0x7f, 0xff, 0xff, 0xff];
            raw.extend_from_slice(b"\x02\x06abc");
            Planned {
                topic: format!("{prefix}.cancelled"),
                key: "u-poison".into(),
                event: None,
                raw: Some(raw),
            }
        }
        _ => Planned {
            topic: format!("{prefix}.created"),
            key: format!("u-{}", i % 7),
            event: Some(Event::new(
                "order.viewed",
                "order-producer",
                serde_json::json!({"order_id": format!("o-{i}")}),
            )),
            raw: None,
        },
    }
}

async fn encode(codecs: &CodecRegistry<Event>, planned: Planned) -> Result<ProducerRecord> {
    let mut headers = Headers::new();
    let value = match (planned.raw, &planned.event) {
        (Some(raw), _) => {
            headers.set_event_type("order.created");
            raw
        }
        (None, Some(event)) => {
            headers = event.headers(Some(OrderEvent::VERSION));
            let ctx = Context::new(&planned.topic);
            codecs
                .codec_for(&planned.topic)?
                .serialize(&ctx, &mut headers, event)
                .await
                .with_context(|| format!("encoding an event for {}", planned.topic))?
        }
        (None, None) => Vec::new(),
    };
    let span = tracing::info_span!(
        "send",
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.destination.name = %planned.topic,
        messaging.operation.type = "send",
    );
    span.in_scope(|| gregor::handler::trace::inject(&mut headers));
    let mut record = ProducerRecord::new(planned.topic.as_str(), value).key(planned.key);
    for h in headers {
        record = record.header(h.key, h.value.unwrap_or_default());
    }
    Ok(record)
}

#[derive(Default)]
struct Totals {
    sent: BTreeMap<String, u64>,
    acked: BTreeMap<String, u64>,
    failed: BTreeMap<String, u64>,
    first_error: Option<String>,
}

impl Totals {
    fn acked(&self) -> u64 {
        self.acked.values().sum()
    }
    fn failed(&self) -> u64 {
        self.failed.values().sum()
    }
    fn sent(&self) -> u64 {
        self.sent.values().sum()
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let _guard = match gregor::telemetry::init_tracing(&config::tracing_config(
        "order-producer",
        &args.traces,
    )) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("order-producer: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("order-producer: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let mut client = config::client_config(args.config.as_ref(), &args.properties)?;
    if let Some(b) = &args.bootstrap_servers {
        client = client.set("bootstrap.servers", b.as_str())?;
    }
    let codecs = config::codecs(
        args.codecs.as_ref(),
        args.format,
        args.schema_registry_url.as_deref(),
    )?;
    let topics: Vec<String> = ["created", "updated", "cancelled"]
        .iter()
        .map(|s| format!("{}.{s}", args.topic_prefix))
        .collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    codecs
        .prepare(&refs)
        .await
        .context("preparing codecs (schema registration)")?;

    let producer = Producer::connect(&client)
        .await
        .context("connecting the producer")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    // The producer's own statistics (gregor_producer_*: batches, retries, queue, latency).
    gregor::ProducerMetrics::register(&mut registry, producer.clone());
    let server = if args.no_metrics {
        None
    } else {
        let addr = SocketAddr::new(args.metrics_host, args.metrics_port);
        let s = MetricsServer::start(addr, Arc::new(registry)).await?;
        eprintln!("metrics: http://{}/metrics", s.local_addr());
        Some(s)
    };

    let stop = gregor::Shutdown::default();
    stop.on_signals();

    // 0 orders means: send until stopped (the extra records then sit among the first 10,000).
    let total = if args.count == 0 {
        0
    } else {
        args.count + args.poison_json + args.poison_schema + args.unrouted
    };
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut pending: FuturesUnordered<
        futures::future::BoxFuture<'static, (String, Result<(), String>)>,
    > = FuturesUnordered::new();
    let mut next_progress = Instant::now() + Duration::from_secs(2);
    let mut ticker = (args.rate > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut i = 0u64;
    let mut marked = 0u64;
    let transient_stride = if args.transient == 0 {
        u64::MAX
    } else {
        (total.max(1) / (args.transient + 1)).max(2)
    };
    while (total == 0 || i < total) && !stop.is_triggered() {
        if let Some(t) = &mut ticker {
            tokio::select! {
                _ = t.tick() => {}
                () = stop.wait() => break,
            }
        }
        let mut planned = plan(&args, i, if args.count == 0 { 10_000 } else { total })?;
        if marked < args.transient
            && i % transient_stride == 1
            && let Some(e) = planned.event.take()
        {
            let is_order = e.event_type != "order.viewed";
            planned.event = Some(if is_order {
                marked += 1;
                e.with_metadata("fail_times", "2")
            } else {
                e
            });
        }
        let topic = planned.topic.clone();
        let record = encode(&codecs, planned).await?;
        let delivery: DeliveryFuture = producer
            .enqueue(record)
            .await
            .with_context(|| format!("sending to {topic}"))?;
        *totals.sent.entry(topic.clone()).or_default() += 1;
        pending.push(Box::pin(async move {
            (topic, delivery.await.map(|_| ()).map_err(|e| e.to_string()))
        }));
        i += 1;
        while let Some(Some((topic, r))) = futures::FutureExt::now_or_never(pending.next()) {
            record_delivery(&mut totals, &metrics, topic, r);
        }
        if pending.len() > 50_000
            && let Some((topic, r)) = pending.next().await
        {
            record_delivery(&mut totals, &metrics, topic, r);
        }
        if Instant::now() >= next_progress {
            progress(&totals, started);
            next_progress += Duration::from_secs(2);
        }
    }
    while let Some((topic, r)) = pending.next().await {
        record_delivery(&mut totals, &metrics, topic, r);
    }
    producer.close().await.context("closing the producer")?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "order-producer: sent {} records in {secs:.1} s ({:.0}/s): {} acknowledged, {} failed",
        totals.sent(),
        totals.sent() as f64 / secs.max(1e-9),
        totals.acked(),
        totals.failed()
    );
    for (t, n) in &totals.acked {
        eprintln!("  {t}: {n}");
    }
    if let Some(e) = &totals.first_error {
        eprintln!("  first error: {e}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "sent": totals.sent(),
                "acked": totals.acked(),
                "failed": totals.failed(),
                "per_topic": totals.acked,
                "orders": args.count,
                "poison_json": args.poison_json,
                "poison_schema": args.poison_schema,
                "transient": marked,
                "unrouted": args.unrouted,
                "seconds": secs,
            })
        );
    }
    if let Some(s) = server {
        s.shutdown().await;
    }
    if totals.failed() > 0 {
        anyhow::bail!("{} records were not acknowledged", totals.failed());
    }
    Ok(())
}

fn record_delivery(totals: &mut Totals, metrics: &Metrics, topic: String, r: Result<(), String>) {
    metrics.produced(&topic, r.is_ok());
    match r {
        Ok(()) => *totals.acked.entry(topic).or_default() += 1,
        Err(e) => {
            totals.first_error.get_or_insert(format!("{topic}: {e}"));
            *totals.failed.entry(topic).or_default() += 1;
        }
    }
}

fn progress(totals: &Totals, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "order-producer: sent {} ({:.0}/s), acknowledged {}, failed {}",
        totals.sent(),
        totals.sent() as f64 / secs,
        totals.acked(),
        totals.failed()
    );
}
