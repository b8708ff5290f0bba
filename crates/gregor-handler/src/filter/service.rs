use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::TryFutureExt;
use futures::future::{Either, MapErr, Ready, ready};
use tower::Service;

use super::layer::Rules;
use crate::error::Error;
use crate::message::{Message, Outcome};

#[derive(Clone, Debug, Default)]
pub(super) struct FilterCounter(Arc<AtomicU64>);

/// The service [`super::FilterLayer`] builds.
#[derive(Clone)]
pub struct Filter<S> {
    pub(super) inner: S,
    pub(super) rules: Arc<Rules>,
    pub(super) filtered: FilterCounter,
}

impl<S> Filter<S> {
    /// Messages this filter (and its clones) kept from the handler.
    pub fn filtered(&self) -> u64 {
        self.filtered.0.load(Ordering::Relaxed)
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Filter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type Mapped<F, E> = MapErr<F, fn(E) -> Error>;

impl<S> Service<Message> for Filter<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = Either<Ready<Result<Outcome, Error>>, Mapped<S::Future, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        if self.rules.accepts(&msg) {
            Either::Right(
                self.inner
                    .call(msg)
                    .map_err(Into::into as fn(S::Error) -> Error),
            )
        } else {
            self.filtered.0.fetch_add(1, Ordering::Relaxed);
            Either::Left(ready(Ok(Outcome::Filtered)))
        }
    }
}
