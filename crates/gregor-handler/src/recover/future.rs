use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::CatchUnwind;
use pin_project_lite::pin_project;

use crate::error::Error;
use crate::message::Outcome;

pin_project! {
    #[project = StateProj]
    pub(super) enum State<F> {
        Running { #[pin] inner: CatchUnwind<AssertUnwindSafe<F>> },
        Panicked { message: Option<String> },
    }
}

pin_project! {
    /// The future of [`super::Recover`].
    pub struct RecoverFuture<F> {
        #[pin]
        pub(super) state: State<F>,
    }
}

impl<F> std::fmt::Debug for RecoverFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoverFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for RecoverFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { inner } => match inner.poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(r)) => Poll::Ready(r.map_err(Into::into)),
                Poll::Ready(Err(payload)) => {
                    let message = super::panic_message(payload.as_ref());
                    tracing::error!(panic = %message, "handler panicked");
                    Poll::Ready(Err(Error::Panicked { message }))
                }
            },
            StateProj::Panicked { message } => {
                let message = message.take().unwrap_or_default();
                tracing::error!(panic = %message, "handler panicked");
                Poll::Ready(Err(Error::Panicked { message }))
            }
        }
    }
}
