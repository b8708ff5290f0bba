use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::layer::{BudgetAction, Config};
use crate::error::{Error, ErrorClass, GaveUp};
use crate::message::{Message, Outcome};

/// The service [`super::RetryLayer`] builds.
#[derive(Clone)]
pub struct Retry<S> {
    pub(super) inner: S,
    /// An unused clone: retries clone it, so a call that needs no retry clones nothing.
    pub(super) prototype: Arc<S>,
    pub(super) config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Message> for Retry<S>
where
    S: Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    type Response = Outcome;
    type Error = Error;
    type Future = RetryFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        // The ready service does the first attempt; retries use clones of the prototype, and
        // only a call that needs a retry allocates.
        RetryFuture {
            state: State::First {
                fut: self.inner.call(msg.clone()),
                again: Some(Again {
                    msg,
                    prototype: Arc::clone(&self.prototype),
                    config: Arc::clone(&self.config),
                    start: Instant::now(),
                }),
            },
        }
    }
}

/// What a retry needs once the first attempt failed.
struct Again<S> {
    msg: Message,
    prototype: Arc<S>,
    config: Arc<Config>,
    start: Instant,
}

impl<S> Again<S>
where
    S: Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    /// Retries after the first attempt failed with `err`.
    async fn run(self, err: Error) -> Result<Outcome, Error> {
        let Again {
            msg,
            prototype,
            config,
            start,
        } = self;
        let mut result: Result<Outcome, Error> = Err(err);
        loop {
            let err = match result {
                Ok(outcome) => return Ok(outcome),
                Err(e) => e,
            };
            if err.class() != ErrorClass::Retriable {
                return Err(err);
            }
            let attempt = msg.attempt();
            let give_up = |reason, err| Error::RetriesExhausted {
                attempts: attempt,
                reason,
                source: Box::new(err),
            };
            if attempt >= config.max_attempts {
                return Err(give_up(GaveUp::Attempts, err));
            }
            let delay = super::backoff(
                config.initial,
                config.multiplier,
                config.max_delay,
                config.jitter,
                attempt,
                super::random_unit(),
            );
            let ends = start.elapsed() + delay;
            if config.max_elapsed.is_some_and(|max| ends > max) {
                return Err(give_up(GaveUp::Elapsed, err));
            }
            if let Some((budget, action)) = config.poll_budget
                && ends > budget
            {
                return Err(match action {
                    BudgetAction::DeadLetter => give_up(GaveUp::PollBudget, err),
                    BudgetAction::Pause => Error::Deferred {
                        retry_after: delay,
                        source: Box::new(err),
                    },
                });
            }
            if let Some(hook) = &config.on_retry {
                hook(&msg, &err, delay);
            }
            tracing::debug!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                attempt,
                ?delay,
                error = %err,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            msg.next_attempt();
            let mut svc = S::clone(&prototype);
            let ready: Result<&mut S, Error> = svc.ready().await.map_err(Into::into);
            result = match ready {
                Ok(ready) => ready.call(msg.clone()).await.map_err(Into::into),
                Err(e) => Err(e),
            };
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F> {
        First {
            #[pin]
            fut: F,
            again: Option<Again<S>>,
        },
        Again {
            fut: BoxFuture<'static, Result<Outcome, Error>>,
        },
    }
}

pin_project! {
    /// The future of [`Retry`]: the first attempt inline, retries in a boxed future.
    pub struct RetryFuture<S, F> {
        #[pin]
        state: State<S, F>,
    }
}

impl<S, F> std::fmt::Debug for RetryFuture<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").finish_non_exhaustive()
    }
}

impl<S, F, E> Future for RetryFuture<S, F>
where
    S: Service<Message, Response = Outcome> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::First { fut, again } => {
                    let err = match fut.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(outcome)) => return Poll::Ready(Ok(outcome)),
                        Poll::Ready(Err(e)) => e.into(),
                    };
                    let Some(next) = again
                        .take()
                        .filter(|_| err.class() == ErrorClass::Retriable)
                    else {
                        return Poll::Ready(Err(err));
                    };
                    state.set(State::Again {
                        fut: Box::pin(next.run(err)),
                    });
                }
                StateProj::Again { fut } => return fut.as_mut().poll(cx),
            }
        }
    }
}
