use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::instrument::Instrumented;

use crate::error::Error;
use crate::message::Outcome;

pin_project! {
    #[project = StateProj]
    pub(super) enum State<F> {
        Traced { #[pin] inner: Instrumented<F> },
        Plain { #[pin] inner: F },
    }
}

pin_project! {
    /// The future of [`super::Tracing`]: inside its span when a subscriber records it, else
    /// the inner future as it is (no span to enter and leave on every poll).
    pub struct TracingFuture<F> {
        #[pin]
        pub(super) state: State<F>,
    }
}

impl<F> std::fmt::Debug for TracingFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for TracingFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = match self.project().state.project() {
            StateProj::Traced { inner } => inner.poll(cx),
            StateProj::Plain { inner } => inner.poll(cx),
        };
        polled.map(|r| r.map_err(Into::into))
    }
}
