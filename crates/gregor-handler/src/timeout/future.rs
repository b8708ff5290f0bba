use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::message::Outcome;

pin_project! {
    /// The future of [`super::Timeout`].
    ///
    /// The timer starts when the inner future first returns pending, and only then: a handler
    /// that answers on its first poll costs no clock read and no timer registration.
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        pub(super) inner: F,
        #[pin]
        pub(super) sleep: Option<Sleep>,
        // Set at the first pending poll; `Some(None)` when `after` is too long for a deadline.
        pub(super) deadline: Option<Option<Instant>>,
        pub(super) after: Duration,
    }
}

impl<F> TimeoutFuture<F> {
    pub(super) fn new(inner: F, after: Duration) -> TimeoutFuture<F> {
        TimeoutFuture {
            inner,
            sleep: None,
            deadline: None,
            after,
        }
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(r) = this.inner.poll(cx) {
            return Poll::Ready(r.map_err(Into::into));
        }
        let after = *this.after;
        // The deadline counts from the first poll that did not finish: a handler that
        // answers at once reads no clock.
        let Some(deadline) = *this
            .deadline
            .get_or_insert_with(|| Instant::now().checked_add(after))
        else {
            return Poll::Pending;
        };
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep_until(deadline)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Error::Timeout { after })),
            _ => Poll::Pending,
        }
    }
}
