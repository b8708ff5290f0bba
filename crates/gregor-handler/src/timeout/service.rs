use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::future::TimeoutFuture;
use crate::error::Error;
use crate::message::{Message, Outcome};

/// The service [`super::TimeoutLayer`] builds.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    pub(super) inner: S,
    pub(super) after: Duration,
}

impl<S> Service<Message> for Timeout<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
{
    type Response = Outcome;
    type Error = Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        TimeoutFuture::new(self.inner.call(msg), self.after)
    }
}
