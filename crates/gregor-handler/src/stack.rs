//! [`Stack`]: the documented layer order, built for you.

use std::time::Duration;

use crate::circuit_breaker::CircuitBreakerLayer;
use crate::dead_letter::DeadLetterLayer;
use crate::dedupe::DedupeLayer;
use crate::error::Error;
use crate::filter::FilterLayer;
use crate::handler::{BoxHandler, boxed};
use crate::message::{Message, Outcome};
use crate::metrics::MetricsLayer;
use crate::recover::RecoverLayer;
use crate::retry::RetryLayer;
use crate::timeout::TimeoutLayer;
use crate::trace::TracingLayer;

/// Builds a handler stack in the documented order, outermost first:
///
/// ```text
/// recover ─▶ metrics ─▶ tracing ─▶ dead-letter ─▶ dedupe ─▶ retry ─▶ circuit breaker
///         ─▶ timeout ─▶ filter ─▶ recover ─▶ handler (a Router, or any service)
/// ```
///
/// Every layer is optional except the two recover layers (see [`crate::recover`] for why
/// there are two). The order is what makes the guarantees: retry inside dead-letter means a
/// record is dead-lettered once, after its last attempt; metrics outside both see final
/// outcomes; the breaker inside retry counts each attempt; dedupe outside retry remembers
/// only successes.
///
/// ```
/// use std::time::Duration;
/// use gregor_handler::{handler_fn, Error, Message, Router, Stack};
/// use gregor_handler::retry::RetryLayer;
///
/// async fn created(_: Message) -> Result<(), Error> { Ok(()) }
/// let router = Router::new().route("order.created", handler_fn(created));
/// let handler = Stack::new(router)
///     .retry(RetryLayer::new().max_attempts(3).backoff(Duration::from_secs(1), 2.0))
///     .timeout(Duration::from_secs(30))
///     .tracing()
///     .build();
/// ```
#[derive(Debug)]
pub struct Stack<S> {
    handler: S,
    metrics: Option<MetricsLayer>,
    tracing: bool,
    dead_letter: Option<DeadLetterLayer>,
    dedupe: Option<DedupeLayer>,
    retry: Option<RetryLayer>,
    breaker: Option<CircuitBreakerLayer>,
    timeout: Option<Duration>,
    filter: Option<FilterLayer>,
}

impl<S> Stack<S>
where
    S: tower::Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    /// A stack around `handler` with only the recover layers.
    pub fn new(handler: S) -> Stack<S> {
        Stack {
            handler,
            metrics: None,
            tracing: false,
            dead_letter: None,
            dedupe: None,
            retry: None,
            breaker: None,
            timeout: None,
            filter: None,
        }
    }

    /// Adds the metrics layer.
    pub fn metrics(mut self, layer: MetricsLayer) -> Stack<S> {
        self.metrics = Some(layer);
        self
    }

    /// Adds the tracing layer.
    pub fn tracing(mut self) -> Stack<S> {
        self.tracing = true;
        self
    }

    /// Adds the dead-letter layer.
    pub fn dead_letter(mut self, layer: DeadLetterLayer) -> Stack<S> {
        self.dead_letter = Some(layer);
        self
    }

    /// Adds the dedupe layer.
    pub fn dedupe(mut self, layer: DedupeLayer) -> Stack<S> {
        self.dedupe = Some(layer);
        self
    }

    /// Adds the retry layer.
    pub fn retry(mut self, layer: RetryLayer) -> Stack<S> {
        self.retry = Some(layer);
        self
    }

    /// Adds a circuit breaker (give its [`crate::circuit_breaker::Breaker`] to the worker).
    pub fn circuit_breaker(mut self, layer: CircuitBreakerLayer) -> Stack<S> {
        self.breaker = Some(layer);
        self
    }

    /// Adds a timeout per attempt.
    pub fn timeout(mut self, after: Duration) -> Stack<S> {
        self.timeout = Some(after);
        self
    }

    /// Adds a filter.
    pub fn filter(mut self, layer: FilterLayer) -> Stack<S> {
        self.filter = Some(layer);
        self
    }

    /// The stack, boxed once (the layers compose statically inside, so a clone, which the
    /// retry layer makes per call, costs reference counts, not allocations).
    pub fn build(self) -> BoxHandler {
        let svc = tower::ServiceBuilder::new()
            .layer(RecoverLayer::new())
            .option_layer(self.metrics)
            .option_layer(self.tracing.then(TracingLayer::new))
            .option_layer(self.dead_letter)
            .option_layer(self.dedupe)
            .option_layer(self.retry)
            .option_layer(self.breaker)
            .option_layer(self.timeout.map(TimeoutLayer::new))
            .option_layer(self.filter)
            .layer(RecoverLayer::new())
            .service(self.handler);
        boxed(svc)
    }
}
