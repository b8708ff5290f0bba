//! Every layer through `oneshot`, no broker; ordering tests at the end.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use gregor_event::{Event, Headers};
use tower::{Layer, Service, ServiceExt};

use crate::circuit_breaker::{CircuitBreakerLayer, State};
use crate::dead_letter::{self, DeadLetterLayer, DeadLetterRecord, Publisher, TopicName};
use crate::dedupe::{DedupeLayer, DedupeStore, MemoryStore};
use crate::filter::FilterLayer;
use crate::metrics::Metrics;
use crate::recover::RecoverLayer;
use crate::retry::{BudgetAction, RetryLayer};
use crate::timeout::TimeoutLayer;
use crate::trace::TracingLayer;
use crate::{
    BoxError, BoxHandler, Error, ErrorClass, GaveUp, Message, Outcome, Router, Stack, boxed,
    handler_fn,
};

fn order(event_type: &str) -> Event {
    Event::new(
        event_type,
        "order-service",
        serde_json::json!({"order_id": "o-1"}),
    )
}

fn msg(event_type: &str) -> Message {
    let e = order(event_type);
    let mut h = e.headers(Some(1));
    h.append("x-tenant", "acme");
    Message::new("commerce.orders.created", 2, 41)
        .with_key("u-7")
        .with_value(e.to_json().unwrap().into_bytes())
        .with_timestamp_ms(1_700_000_000_123)
        .with_headers(h)
        .with_group("order-processor")
        .with_event(e)
}

/// A handler that fails with `error()` on its first `failures` attempts, then succeeds.
fn flaky(failures: u32, calls: &Arc<AtomicU32>, error: fn() -> Error) -> BoxHandler {
    let calls = Arc::clone(calls);
    boxed(handler_fn(move |m: Message| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if m.attempt() <= failures {
                Err(error())
            } else {
                Ok(())
            }
        }
    }))
}

fn transient() -> Error {
    Error::retriable("database unavailable")
}

#[derive(Default)]
struct Recorder {
    records: Mutex<Vec<DeadLetterRecord>>,
    fail: bool,
}

impl Recorder {
    fn failing() -> Recorder {
        Recorder {
            fail: true,
            ..Recorder::default()
        }
    }

    fn take(&self) -> Vec<DeadLetterRecord> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

impl Publisher for Recorder {
    fn publish(&self, record: DeadLetterRecord) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            if self.fail {
                return Err("broker unreachable".into());
            }
            self.records.lock().unwrap().push(record);
            Ok(())
        })
    }
}

fn publisher(r: &Arc<Recorder>) -> Arc<dyn Publisher> {
    Arc::<Recorder>::clone(r)
}

fn dedupe_store(s: &Arc<MemoryStore>) -> Arc<dyn DedupeStore> {
    Arc::<MemoryStore>::clone(s)
}

fn no_jitter() -> RetryLayer {
    RetryLayer::new()
        .max_attempts(3)
        .backoff(Duration::from_secs(1), 2.0)
        .jitter(0.0)
}

mod retry {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_succeed_after_backoffs() {
        let calls = Arc::new(AtomicU32::new(0));
        let delays = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&delays);
        let svc = no_jitter()
            .on_retry(move |m, e, d| seen.lock().unwrap().push((m.attempt(), e.class(), d)))
            .layer(flaky(2, &calls, transient));
        let start = tokio::time::Instant::now();
        let out = svc.oneshot(msg("order.created")).await.unwrap();
        assert_eq!(out, Outcome::Processed);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            *delays.lock().unwrap(),
            [
                (1, ErrorClass::Retriable, Duration::from_secs(1)),
                (2, ErrorClass::Retriable, Duration::from_secs(2))
            ]
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_are_never_retried() {
        for fatal in [
            (|| Error::validation("no items")) as fn() -> Error,
            || Error::authorization("user may not order"),
            || Error::fatal("bad data"),
        ] {
            let calls = Arc::new(AtomicU32::new(0));
            let err = no_jitter()
                .layer(flaky(5, &calls, fatal))
                .oneshot(msg("order.created"))
                .await
                .unwrap_err();
            assert_eq!(err.class(), ErrorClass::Fatal);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{err}");
        }
        // An undecodable record is fatal too: the router fails it once.
        let calls = Arc::new(AtomicU32::new(0));
        let router = Router::new().route("order.created", flaky(0, &calls, transient));
        let poison = Message::new("t", 0, 0).with_decode_error("not JSON");
        let err = no_jitter().layer(router).oneshot(poison).await.unwrap_err();
        assert!(matches!(err, Error::Deserialization { .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let calls = Arc::new(AtomicU32::new(0));
        let err = no_jitter()
            .layer(flaky(10, &calls, transient))
            .oneshot(msg("order.created"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::RetriesExhausted {
                    attempts: 3,
                    reason: GaveUp::Attempts,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Retriable);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_stops_before_a_long_backoff() {
        let calls = Arc::new(AtomicU32::new(0));
        let err = no_jitter()
            .max_attempts(10)
            .max_elapsed(Duration::from_millis(2500))
            .layer(flaky(10, &calls, transient))
            .oneshot(msg("order.created"))
            .await
            .unwrap_err();
        // 1 s, then 2 s would end at 3 s > 2.5 s.
        assert!(
            matches!(
                err,
                Error::RetriesExhausted {
                    attempts: 2,
                    reason: GaveUp::Elapsed,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_poll_budget_is_never_exceeded() {
        let calls = Arc::new(AtomicU32::new(0));
        let err = no_jitter()
            .max_attempts(10)
            .poll_budget(Duration::from_secs(5), BudgetAction::DeadLetter)
            .layer(flaky(10, &calls, transient))
            .oneshot(msg("order.created"))
            .await
            .unwrap_err();
        // 1 s + 2 s = 3 s; the next 4 s would end at 7 s > 5 s.
        assert!(
            matches!(
                err,
                Error::RetriesExhausted {
                    attempts: 3,
                    reason: GaveUp::PollBudget,
                    ..
                }
            ),
            "{err}"
        );

        let start = tokio::time::Instant::now();
        let err = no_jitter()
            .max_attempts(10)
            .poll_budget(Duration::from_secs(5), BudgetAction::Pause)
            .layer(flaky(10, &calls, transient))
            .oneshot(msg("order.created"))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Deferred);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
        assert!(start.elapsed() <= Duration::from_secs(5));
    }
}

mod dead_letter_layer {
    use super::*;

    #[tokio::test]
    async fn fatal_errors_publish_value_key_headers_and_every_dead_letter_header() {
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let svc = DeadLetterLayer::new(publisher(&dlq))
            .layer(flaky(1, &calls, || Error::validation("amount is negative")));
        let m = msg("order.created");
        let out = svc.oneshot(m.clone()).await.unwrap();
        assert_eq!(out, Outcome::DeadLettered);
        let records = dlq.take();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.topic, "commerce.orders.created.dlq");
        assert_eq!(r.key.as_deref(), Some(&b"u-7"[..]));
        assert_eq!(r.value, m.value().cloned());
        let h = &r.headers;
        assert_eq!(
            h.get_str("error"),
            Some("invalid event: amount is negative")
        );
        assert_eq!(h.get_str("error_class"), Some("fatal"));
        assert_eq!(h.get_str("retry_count"), Some("0"));
        assert_eq!(h.get_str("original_topic"), Some("commerce.orders.created"));
        assert_eq!(h.get_str("original_partition"), Some("2"));
        assert_eq!(h.get_str("original_offset"), Some("41"));
        assert_eq!(h.get_str("original_timestamp"), Some("1700000000123"));
        assert_eq!(h.get_str("consumer_group"), Some("order-processor"));
        // Original headers kept, in order, before the added ones.
        assert_eq!(h.event_type(), Some("order.created"));
        assert_eq!(h.get_str("x-tenant"), Some("acme"));
        assert_eq!(h.len(), m.headers().len() + dead_letter::HEADERS.len());
    }

    #[tokio::test]
    async fn dead_letter_headers_replace_earlier_ones() {
        // A record replayed from a DLQ and failing again carries one set of headers.
        let dlq = Arc::new(Recorder::default());
        let mut h = Headers::new();
        for k in dead_letter::HEADERS {
            h.append(k, "old");
            h.append(k, "older");
        }
        h.append("x-keep", "1");
        let m = Message::new("orders", 0, 5)
            .with_headers(h)
            .with_decode_error("truncated");
        let svc = DeadLetterLayer::new(publisher(&dlq))
            .topic(TopicName::Fixed("all.dlq".into()))
            .layer(Router::new());
        assert_eq!(svc.oneshot(m).await.unwrap(), Outcome::DeadLettered);
        let r = &dlq.take()[0];
        assert_eq!(r.topic, "all.dlq");
        for k in dead_letter::HEADERS {
            assert_eq!(r.headers.get_all(k).count(), 1, "{k}");
        }
        assert_eq!(r.headers.get_str("original_offset"), Some("5"));
        assert_eq!(r.headers.get_str("consumer_group"), Some(""));
        assert_eq!(r.headers.get_str("x-keep"), Some("1"));
        assert!(r.headers.get_str("error").unwrap().contains("truncated"));
    }

    #[tokio::test]
    async fn a_failed_publish_is_an_error_and_success_publishes_nothing() {
        let calls = Arc::new(AtomicU32::new(0));
        let svc =
            DeadLetterLayer::new(Arc::new(Recorder::failing()))
                .layer(flaky(1, &calls, || Error::fatal("bad")));
        let err = svc.oneshot(msg("order.created")).await.unwrap_err();
        assert!(
            matches!(err, Error::DeadLetter { ref topic, .. } if topic == "commerce.orders.created.dlq"),
            "{err}"
        );
        assert_eq!(err.class(), ErrorClass::Retriable);

        let dlq = Arc::new(Recorder::default());
        let svc = DeadLetterLayer::new(publisher(&dlq)).layer(flaky(0, &calls, transient));
        assert_eq!(
            svc.oneshot(msg("order.created")).await.unwrap(),
            Outcome::Processed
        );
        assert!(dlq.take().is_empty());
    }

    #[tokio::test]
    async fn deferred_errors_pass_through() {
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let svc =
            DeadLetterLayer::new(publisher(&dlq)).layer(flaky(1, &calls, || Error::CircuitOpen {
                retry_after: Duration::from_secs(3),
            }));
        let err = svc.oneshot(msg("order.created")).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Deferred);
        assert!(dlq.take().is_empty());
    }
}

mod filter {
    use super::*;

    #[tokio::test]
    async fn allow_list_time_range_and_predicates() {
        let calls = Arc::new(AtomicU32::new(0));
        let layer = FilterLayer::new().allow_types(["order.created", "order.cancelled"]);
        let svc = layer.layer(flaky(0, &calls, transient));
        assert_eq!(
            svc.clone().oneshot(msg("order.created")).await.unwrap(),
            Outcome::Processed
        );
        assert_eq!(
            svc.clone().oneshot(msg("order.shipped")).await.unwrap(),
            Outcome::Filtered
        );
        assert_eq!(svc.filtered(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let now = gregor_event::time::now();
        let in_range = FilterLayer::new()
            .from(now - chrono::Duration::hours(1))
            .until(now + chrono::Duration::hours(1))
            .layer(flaky(0, &calls, transient));
        assert_eq!(
            in_range
                .clone()
                .oneshot(msg("order.created"))
                .await
                .unwrap(),
            Outcome::Processed
        );
        let old = Message::new("t", 0, 0)
            .with_event(order("order.created").with_timestamp(now - chrono::Duration::days(2)));
        assert_eq!(in_range.oneshot(old).await.unwrap(), Outcome::Filtered);

        let keyed = FilterLayer::new()
            .predicate(|m| m.key().is_some())
            .layer(flaky(0, &calls, transient));
        assert_eq!(
            keyed.clone().oneshot(msg("order.created")).await.unwrap(),
            Outcome::Processed
        );
        let unkeyed = Message::new("t", 0, 0).with_event(order("order.created"));
        assert_eq!(keyed.oneshot(unkeyed).await.unwrap(), Outcome::Filtered);
    }

    #[tokio::test]
    async fn undecodable_records_are_not_filtered_away() {
        let dlq = Arc::new(Recorder::default());
        let svc = DeadLetterLayer::new(publisher(&dlq)).layer(
            FilterLayer::new()
                .allow_types(["order.created"])
                .layer(Router::new()),
        );
        let poison = Message::new("t", 0, 0).with_decode_error("bad bytes");
        assert_eq!(svc.oneshot(poison).await.unwrap(), Outcome::DeadLettered);
        assert_eq!(dlq.take().len(), 1);
    }
}

mod metrics {
    use super::*;
    use prometheus_client::registry::Registry;

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[tokio::test(start_paused = true)]
    async fn counts_consumed_durations_retries_and_outcomes_with_one_label_set_each() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let svc = metrics.layer().layer(
            DeadLetterLayer::new(publisher(&dlq)).layer(
                no_jitter().layer(
                    Router::new()
                        .route("order.created", flaky(1, &calls, transient))
                        .route("order.cancelled", flaky(9, &calls, transient)),
                ),
            ),
        );
        let mut svc = svc;
        for m in [
            msg("order.created"),
            msg("order.cancelled"),
            msg("order.paid"),
        ] {
            svc.ready().await.unwrap().call(m).await.unwrap();
        }
        let text = scrape(&registry);
        let has = |line: &str| assert!(text.contains(line), "missing {line} in\n{text}");
        has(
            r#"kafka_messages_consumed_total{topic="commerce.orders.created",partition="2",consumer_group="order-processor"} 3"#,
        );
        has(
            r#"kafka_message_processing_duration_seconds_count{topic="commerce.orders.created",event_type="order.created"} 1"#,
        );
        has(
            r#"kafka_message_processing_duration_seconds_count{topic="commerce.orders.created",event_type="order.cancelled"} 1"#,
        );
        // created: 1 retry; cancelled: 2 retries then dead-lettered.
        has(r#"kafka_message_retries_total{topic="commerce.orders.created"} 3"#);
        has(r#"kafka_messages_dead_lettered_total{topic="commerce.orders.created"} 1"#);
        has(
            r#"kafka_messages_handled_total{topic="commerce.orders.created",outcome="processed"} 1"#,
        );
        has(r#"kafka_messages_handled_total{topic="commerce.orders.created",outcome="skipped"} 1"#);
        has(
            r#"kafka_messages_handled_total{topic="commerce.orders.created",outcome="dead_lettered"} 1"#,
        );
        // One label set per metric: every consumed series has exactly these three labels.
        for line in text
            .lines()
            .filter(|l| l.starts_with("kafka_messages_consumed_total{"))
        {
            assert_eq!(line.matches('=').count(), 3, "{line}");
        }
    }
}

mod tracing_layer {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn the_consumer_span_continues_the_producers_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            // Producer side: a span, its context injected into the record's headers.
            let producer = tracing::info_span!("send");
            let mut headers = Headers::new();
            let producer_trace = {
                let _g = producer.enter();
                crate::trace::inject(&mut headers);
                producer.context().span().span_context().trace_id()
            };
            let tp = headers
                .traceparent()
                .unwrap()
                .expect("traceparent injected");
            assert_eq!(format!("{:032x}", tp.trace_id), producer_trace.to_string());

            // Consumer side, on another "machine": only the headers travel.
            let seen = Arc::new(Mutex::new(None));
            let seen2 = Arc::clone(&seen);
            let handler = handler_fn(move |_m: Message| {
                let cx = tracing::Span::current().context();
                let sc = cx.span().span_context().clone();
                *seen2.lock().unwrap() = Some((sc.trace_id(), sc.span_id()));
                async { Ok::<(), Error>(()) }
            });
            let m = Message::new("commerce.orders.created", 0, 9).with_headers(headers);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(TracingLayer::new().layer(handler).oneshot(m))
                .unwrap();
            let (trace_id, span_id) = seen.lock().unwrap().expect("handler ran in a span");
            assert_eq!(trace_id, producer_trace);
            assert_ne!(
                span_id.to_string(),
                format!("{:016x}", tp.parent_id),
                "a child span of its own"
            );
        });
    }

    #[tokio::test]
    async fn no_subscriber_no_headers_still_handles() {
        let calls = Arc::new(AtomicU32::new(0));
        let out = TracingLayer::new()
            .layer(flaky(0, &calls, transient))
            .oneshot(Message::new("t", 0, 0))
            .await
            .unwrap();
        assert_eq!(out, Outcome::Processed);
    }
}

mod timeout {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slow_handlers_time_out_retriably_and_retry_gives_each_attempt_the_full_time() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let slow_first = handler_fn(move |m: Message| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                if m.attempt() == 1 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok::<(), Error>(())
            }
        });
        let err = TimeoutLayer::new(Duration::from_secs(5))
            .layer(slow_first.clone())
            .oneshot(msg("order.created"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { after } if after == Duration::from_secs(5)));
        assert!(err.is_retriable());

        let svc = no_jitter().layer(TimeoutLayer::new(Duration::from_secs(5)).layer(slow_first));
        assert_eq!(
            svc.oneshot(msg("order.created")).await.unwrap(),
            Outcome::Processed
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn towers_own_layers_compose() {
        // tower's timeout, concurrency limit and load-shed around and inside gregor layers.
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let slow = handler_fn(move |_m: Message| {
            c.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), Error>(())
            }
        });
        let inner = tower::ServiceBuilder::new()
            .map_err(Error::from)
            .timeout(Duration::from_secs(1))
            .service(slow);
        let svc = tower::ServiceBuilder::new()
            .concurrency_limit(4)
            .load_shed()
            .service(no_jitter().layer(inner));
        let err = svc.oneshot(msg("order.created")).await.unwrap_err();
        let err = Error::from(err);
        assert!(
            matches!(err, Error::RetriesExhausted { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}

mod circuit_breaker {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_n_failures_probes_half_open_and_closes() {
        let layer = CircuitBreakerLayer::new(2, Duration::from_secs(10));
        let breaker = layer.breaker();
        let calls = Arc::new(AtomicU32::new(0));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (c, f) = (Arc::clone(&calls), Arc::clone(&fail));
        let mut svc = layer.layer(handler_fn(move |_m: Message| {
            c.fetch_add(1, Ordering::SeqCst);
            let failing = f.load(Ordering::SeqCst);
            async move { if failing { Err(transient()) } else { Ok(()) } }
        }));
        let call = async |svc: &mut crate::circuit_breaker::CircuitBreaker<_>| {
            svc.ready().await.unwrap().call(msg("order.created")).await
        };
        assert!(call(&mut svc).await.is_err());
        assert_eq!(breaker.state(), State::Closed);
        assert!(call(&mut svc).await.is_err());
        assert!(matches!(breaker.state(), State::Open { .. }));
        assert!(breaker.is_blocking());

        // Open: refused without calling the handler, deferred (not retried, not dead-lettered).
        let err = call(&mut svc).await.unwrap_err();
        assert!(matches!(err, Error::CircuitOpen { .. }));
        assert_eq!(err.class(), ErrorClass::Deferred);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Half-open: one probe; it fails, so open again.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(call(&mut svc).await.unwrap_err().is_retriable());
        assert!(matches!(breaker.state(), State::Open { .. }));

        // The next probe succeeds: closed.
        tokio::time::advance(Duration::from_secs(10)).await;
        fail.store(false, Ordering::SeqCst);
        assert_eq!(call(&mut svc).await.unwrap(), Outcome::Processed);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.failures(), 0);
    }

    #[tokio::test]
    async fn fatal_errors_do_not_trip_it() {
        let layer = CircuitBreakerLayer::new(1, Duration::from_secs(10));
        let breaker = layer.breaker();
        let calls = Arc::new(AtomicU32::new(0));
        let mut svc = layer.layer(flaky(10, &calls, || Error::validation("bad")));
        for _ in 0..3 {
            svc.ready()
                .await
                .unwrap()
                .call(msg("order.created"))
                .await
                .unwrap_err();
        }
        assert_eq!(breaker.state(), State::Closed);
    }
}

mod dedupe {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_handled_event_is_a_duplicate_within_the_window_only() {
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60), 100));
        let calls = Arc::new(AtomicU32::new(0));
        let mut svc = DedupeLayer::new(dedupe_store(&store)).layer(flaky(0, &calls, transient));
        let m = msg("order.created");
        let redelivered = Message::new("commerce.orders.created", 2, 41)
            .with_event(Arc::clone(m.event_arc().unwrap()));
        assert_eq!(
            svc.ready().await.unwrap().call(m).await.unwrap(),
            Outcome::Processed
        );
        assert_eq!(
            svc.ready()
                .await
                .unwrap()
                .call(redelivered.clone())
                .await
                .unwrap(),
            Outcome::Duplicate
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            svc.ready().await.unwrap().call(redelivered).await.unwrap(),
            Outcome::Processed
        );
    }

    #[tokio::test]
    async fn failures_are_not_remembered() {
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60), 100));
        let calls = Arc::new(AtomicU32::new(0));
        let m = msg("order.created");
        let err = DedupeLayer::new(dedupe_store(&store))
            .layer(flaky(1, &calls, transient))
            .oneshot(m.clone())
            .await;
        assert!(err.is_err());
        let out = DedupeLayer::new(dedupe_store(&store))
            .layer(flaky(0, &calls, transient))
            .oneshot(m.redeliver())
            .await
            .unwrap();
        assert_eq!(out, Outcome::Processed);
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded() {
        let store = MemoryStore::new(Duration::from_secs(60), 3);
        for k in ["a", "b", "c", "d", "e"] {
            store.remember(k).await.unwrap();
        }
        assert_eq!(store.len(), 3);
        assert!(!store.seen("a").await.unwrap());
        assert!(store.seen("e").await.unwrap());
        // Remembering a key again keeps one entry for it.
        store.remember("e").await.unwrap();
        assert!(store.seen("e").await.unwrap());
        assert!(store.len() <= 3);
    }
}

mod recover {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_call_or_future_is_a_fatal_error() {
        #[derive(Clone)]
        struct PanicsInCall;
        impl Service<Message> for PanicsInCall {
            type Response = Outcome;
            type Error = Error;
            type Future = futures::future::Ready<Result<Outcome, Error>>;
            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Error>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Message) -> Self::Future {
                panic!("synchronous boom")
            }
        }
        let err = RecoverLayer::new()
            .layer(PanicsInCall)
            .oneshot(Message::new("t", 0, 0))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Panicked { ref message } if message == "synchronous boom"));
        assert_eq!(err.class(), ErrorClass::Fatal);
    }

    #[tokio::test]
    async fn the_default_stack_dead_letters_a_panicking_handler() {
        let dlq = Arc::new(Recorder::default());
        let handler = Stack::new(handler_fn(|m: Message| async move {
            if m.offset() == 41 {
                panic!("index out of bounds");
            }
            Ok::<(), Error>(())
        }))
        .dead_letter(DeadLetterLayer::new(publisher(&dlq)))
        .retry(no_jitter())
        .build();
        let out = handler.clone().oneshot(msg("order.created")).await.unwrap();
        assert_eq!(out, Outcome::DeadLettered);
        let r = &dlq.take()[0];
        assert_eq!(r.headers.get_str("error_class"), Some("fatal"));
        assert_eq!(r.headers.get_str("retry_count"), Some("0"));
        assert!(
            r.headers
                .get_str("error")
                .unwrap()
                .contains("index out of bounds")
        );
        // And the worker goes on with the next record.
        let next = Message::new("t", 0, 42).with_event(order("order.created"));
        assert_eq!(handler.oneshot(next).await.unwrap(), Outcome::Processed);
    }
}

mod ordering {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retry_inside_dead_letter_retries_first_then_dead_letters_once() {
        // The documented order: a transient failure is retried and succeeds; nothing is
        // dead-lettered.
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let right = DeadLetterLayer::new(publisher(&dlq))
            .layer(no_jitter().layer(flaky(2, &calls, transient)));
        assert_eq!(
            right.oneshot(msg("order.created")).await.unwrap(),
            Outcome::Processed
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(dlq.take().is_empty());

        // A persistent failure: three attempts, then exactly one dead-letter record that says so.
        let calls = Arc::new(AtomicU32::new(0));
        let right = DeadLetterLayer::new(publisher(&dlq))
            .layer(no_jitter().layer(flaky(99, &calls, transient)));
        assert_eq!(
            right.oneshot(msg("order.created")).await.unwrap(),
            Outcome::DeadLettered
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let records = dlq.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].headers.get_str("retry_count"), Some("2"));
        assert_eq!(records[0].headers.get_str("error_class"), Some("retriable"));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_outside_dead_letter_dead_letters_what_a_retry_would_have_fixed() {
        // The wrong order: the first failure is dead-lettered at once (the dead-letter layer
        // answers Ok), so the retry layer never retries a transient failure.
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let wrong = no_jitter()
            .layer(DeadLetterLayer::new(publisher(&dlq)).layer(flaky(2, &calls, transient)));
        assert_eq!(
            wrong.oneshot(msg("order.created")).await.unwrap(),
            Outcome::DeadLettered
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let records = dlq.take();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].headers.get_str("retry_count"), Some("0"));
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_outside_dead_letter_see_final_outcomes_inside_they_see_errors() {
        use prometheus_client::registry::Registry;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let outside = metrics
            .layer()
            .layer(
                DeadLetterLayer::new(publisher(&dlq)).layer(flaky(9, &calls, || Error::fatal("x"))),
            );
        outside.oneshot(msg("order.created")).await.unwrap();
        let mut registry2 = Registry::default();
        let metrics2 = Metrics::register(&mut registry2);
        let inside = DeadLetterLayer::new(publisher(&dlq)).layer(metrics2.layer().layer(flaky(
            9,
            &calls,
            || Error::fatal("x"),
        )));
        inside.oneshot(msg("order.created")).await.unwrap();
        let text = |r: &Registry| {
            let mut t = String::new();
            prometheus_client::encoding::text::encode(&mut t, r).unwrap();
            t
        };
        assert!(text(&registry).contains(r#"outcome="dead_lettered"} 1"#));
        assert!(text(&registry2).contains(r#"outcome="failed"} 1"#));
        assert!(
            text(&registry2).contains(
                r#"kafka_messages_dead_lettered_total{topic="commerce.orders.created"} 0"#
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_full_default_stack_handles_a_mixed_batch() {
        let dlq = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU32::new(0));
        let handler = Stack::new(
            Router::new()
                .route("order.created", flaky(0, &calls, transient))
                .route("order.updated", flaky(1, &calls, transient))
                .fallback(crate::Fallback::DeadLetter),
        )
        .dead_letter(DeadLetterLayer::new(publisher(&dlq)))
        .retry(no_jitter())
        .timeout(Duration::from_secs(5))
        .tracing()
        .filter(FilterLayer::new().predicate(|m| m.offset() != 99))
        .build();
        let filtered = Message::new("t", 0, 99).with_event(order("order.created"));
        let cases = [
            (msg("order.created"), Outcome::Processed),
            (msg("order.updated"), Outcome::Processed),
            (msg("order.refunded"), Outcome::DeadLettered),
            (
                Message::new("t", 0, 1).with_decode_error("eof"),
                Outcome::DeadLettered,
            ),
            (filtered, Outcome::Filtered),
        ];
        for (m, want) in cases {
            assert_eq!(handler.clone().oneshot(m).await.unwrap(), want);
        }
        let records = dlq.take();
        assert_eq!(records.len(), 2);
        assert!(
            records[0]
                .headers
                .get_str("error")
                .unwrap()
                .contains("order.refunded")
        );
        assert_eq!(records[1].headers.get_str("error_class"), Some("fatal"));
    }
}
