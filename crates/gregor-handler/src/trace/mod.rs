//! Tracing: each message is handled inside a consumer span that continues the producer's
//! trace (W3C `traceparent` and `tracestate` headers), with OpenTelemetry's messaging
//! attributes.
//!
//! ```text
//! headers ─▶ traceparent/tracestate ─▶ parent context ─▶ span "<topic> process" (kind consumer)
//!            messaging.system=kafka, messaging.destination.name, messaging.destination.partition.id,
//!            messaging.kafka.offset, messaging.consumer.group.name, messaging.operation.type=process
//! ```
//!
//! Spans reach an exporter when the application installed one (gregor-telemetry's
//! `init_tracing` with OTLP or stdout); without it the layer costs a header lookup.
//! [`inject`] is the producer side: it writes the current span's context into headers.

mod future;
mod layer;
mod service;

pub use future::TracingFuture;
pub use layer::TracingLayer;
pub use service::Tracing;

use gregor_event::Headers;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header carrying vendor trace state next to `traceparent`.
pub const TRACESTATE: &str = "tracestate";

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.key.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_bytes());
    }
}

/// The trace context carried by `headers` (empty when they carry none or an invalid one).
pub fn extract(headers: &Headers) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes the current span's trace context into `headers` as `traceparent` (and
/// `tracestate` when there is one), replacing earlier values. Does nothing when the current
/// span is not recorded by OpenTelemetry.
///
/// ```
/// let mut headers = gregor_event::Headers::new();
/// gregor_handler::trace::inject(&mut headers); // no OpenTelemetry subscriber: nothing to write
/// assert!(headers.get("traceparent").is_none());
/// ```
pub fn inject(headers: &mut Headers) {
    inject_context(&tracing::Span::current().context(), headers);
}

/// Writes `cx`'s trace context into `headers`.
pub fn inject_context(cx: &opentelemetry::Context, headers: &mut Headers) {
    use opentelemetry::trace::TraceContextExt;
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}
