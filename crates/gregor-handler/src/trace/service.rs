use std::task::{Context, Poll};

use tower::Service;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::future::{State, TracingFuture};

use crate::error::Error;
use crate::message::{Message, Outcome};

/// The service [`super::TracingLayer`] builds.
#[derive(Debug, Clone)]
pub struct Tracing<S> {
    pub(super) inner: S,
}

impl<S> Service<Message> for Tracing<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = TracingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let span = tracing::info_span!(
            "process",
            otel.name = %format_args!("{} process", msg.topic()),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = msg.topic(),
            messaging.destination.partition.id = msg.partition(),
            messaging.kafka.offset = msg.offset(),
            messaging.consumer.group.name = msg.group().unwrap_or(""),
            messaging.kafka.message.key = msg.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or(""),
            event_type = msg.event_type().unwrap_or(""),
        );
        if span.is_disabled() {
            // No subscriber records it: no parent to extract, nothing to enter.
            return TracingFuture {
                state: State::Plain {
                    inner: self.inner.call(msg),
                },
            };
        }
        let parent = super::extract(msg.headers());
        // Fails only when no OpenTelemetry layer records the span: nothing to link then.
        let _ = span.set_parent(parent);
        let fut = span.in_scope(|| self.inner.call(msg));
        TracingFuture {
            state: State::Traced {
                inner: fut.instrument(span),
            },
        }
    }
}
