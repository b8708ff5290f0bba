//! The global subscriber: spans get W3C trace context that can travel in Kafka headers.

use std::collections::HashMap;

use gregor_telemetry::{Exporter, TracingConfig, init_tracing};
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[test]
fn spans_carry_w3c_trace_context_and_a_second_init_is_refused() {
    let guard = init_tracing(&TracingConfig {
        service_name: "telemetry-test".into(),
        exporter: Exporter::Stdout,
        ..TracingConfig::default()
    })
    .expect("first init");

    let span = tracing::info_span!("produce", topic = "commerce.orders.created");
    let mut headers: HashMap<String, String> = HashMap::new();
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut headers));
    let traceparent = headers.get("traceparent").expect("traceparent injected");
    // version-traceid-spanid-flags: 00-<32 hex>-<16 hex>-01
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    assert_ne!(parts[1], "0".repeat(32), "a real trace id");

    // The consumer side: a span whose parent is extracted from those headers has the same trace.
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&headers));
    let child = tracing::info_span!("consume");
    let _ = child.set_parent(parent);
    let mut child_headers: HashMap<String, String> = HashMap::new();
    let child_cx = child.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&child_cx, &mut child_headers)
    });
    let child_trace = child_headers["traceparent"]
        .split('-')
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(child_trace, parts[1], "same trace id across the hop");

    let e = init_tracing(&TracingConfig::default()).unwrap_err();
    assert!(e.to_string().contains("already set"), "{e}");
    drop(guard);
}
