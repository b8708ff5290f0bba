use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::layer::Breaker;
use crate::error::{Error, ErrorClass};
use crate::message::Outcome;

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Refused { retry_after: Duration },
        Running { #[pin] inner: F, breaker: Breaker, probe: bool },
    }
}

pin_project! {
    /// The future of [`super::CircuitBreaker`].
    pub struct BreakerFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

impl<F> BreakerFuture<F> {
    pub(super) fn refused(retry_after: Duration) -> BreakerFuture<F> {
        BreakerFuture {
            kind: Kind::Refused { retry_after },
        }
    }

    pub(super) fn running(inner: F, breaker: Breaker, probe: bool) -> BreakerFuture<F> {
        BreakerFuture {
            kind: Kind::Running {
                inner,
                breaker,
                probe,
            },
        }
    }
}

impl<F> std::fmt::Debug for BreakerFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for BreakerFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Refused { retry_after } => Poll::Ready(Err(Error::CircuitOpen {
                retry_after: *retry_after,
            })),
            KindProj::Running {
                inner,
                breaker,
                probe,
            } => {
                let result = match inner.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r.map_err(Into::into),
                };
                let failed = matches!(&result, Err(e) if e.class() == ErrorClass::Retriable);
                breaker.record(failed, *probe);
                Poll::Ready(result)
            }
        }
    }
}
