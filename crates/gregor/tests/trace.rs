//! Across a real broker, the consumer span continues the producer's trace: the trace id the
//! handler sees is the one the producing span had, carried by the `traceparent` header.
//! (Its own test binary: it installs a global subscriber.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor::Worker;
use gregor::client::{ClientConfig, Producer, ProducerRecord};
use gregor::codec::{CodecRegistry, JsonCodec};
use gregor::event::Event;
use gregor::handler::{Error, Message, Stack, handler_fn};
use gregor_testkit::{Kafka, create_topic, unique_topic};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_has_the_producers_trace_id() {
    let provider = SdkTracerProvider::builder().build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .init();

    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("w-trace");
    create_topic(kafka.bootstrap(), &topic, 1, 1).await.unwrap();
    let group = unique_topic("w-trace-group");
    let config = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap()
        .set("group.id", group.as_str())
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap();

    // Producer side: inside a span, inject its context into the record's headers.
    let event = Event::new(
        "order.created",
        "test",
        serde_json::json!({"order_id": "o-1"}),
    );
    let span = tracing::info_span!("send", otel.kind = "producer");
    let (producer_trace, record) = {
        let _g = span.enter();
        let mut headers = event.headers(Some(1));
        gregor::handler::trace::inject(&mut headers);
        let mut r = ProducerRecord::new(topic.as_str(), event.to_json().unwrap().into_bytes());
        for h in headers {
            r = r.header(h.key, h.value.unwrap_or_default());
        }
        (span.context().span().span_context().trace_id(), r)
    };
    assert_ne!(producer_trace, TraceId::INVALID);
    let producer = Producer::connect(&config).await.unwrap();
    producer.send(record).await.unwrap();
    producer.close().await.unwrap();

    let seen: Arc<Mutex<Option<TraceId>>> = Arc::default();
    let s = Arc::clone(&seen);
    let handler = handler_fn(move |_m: Message| {
        let cx = tracing::Span::current().context();
        *s.lock().unwrap() = Some(cx.span().span_context().trace_id());
        async { Ok::<(), Error>(()) }
    });
    let worker = Worker::builder(config)
        .topics([topic.clone()])
        .codecs(Arc::new(
            CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        ))
        .handler(Stack::new(handler).tracing().build())
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the record never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.trigger();
    run.await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(producer_trace));
}
