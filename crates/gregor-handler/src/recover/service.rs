use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use futures::FutureExt;
use tower::Service;

use super::future::{RecoverFuture, State};
use crate::error::Error;
use crate::message::{Message, Outcome};

/// The service [`super::RecoverLayer`] builds.
#[derive(Debug, Clone)]
pub struct Recover<S> {
    pub(super) inner: S,
}

impl<S> Service<Message> for Recover<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = RecoverFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.poll_ready(cx))) {
            Ok(p) => p.map_err(Into::into),
            Err(payload) => Poll::Ready(Err(Error::Panicked {
                message: super::panic_message(payload.as_ref()),
            })),
        }
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let state = match catch_unwind(AssertUnwindSafe(|| self.inner.call(msg))) {
            Ok(fut) => State::Running {
                inner: AssertUnwindSafe(fut).catch_unwind(),
            },
            Err(payload) => State::Panicked {
                message: Some(super::panic_message(payload.as_ref())),
            },
        };
        RecoverFuture { state }
    }
}
