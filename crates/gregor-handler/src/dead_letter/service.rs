use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use futures::future::BoxFuture;
use tower::Service;

use super::layer::TopicName;
use super::{DeadLetterRecord, Publisher};
use crate::error::{Error, ErrorClass, chain};
use crate::message::{Message, Outcome};

/// The service [`super::DeadLetterLayer`] builds.
#[derive(Clone)]
pub struct DeadLetter<S> {
    pub(super) inner: S,
    pub(super) publisher: Arc<dyn Publisher>,
    pub(super) topic: Arc<TopicName>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for DeadLetter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("inner", &self.inner)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Message> for DeadLetter<S>
where
    S: Service<Message, Response = Outcome>,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    type Response = Outcome;
    type Error = Error;
    type Future = DeadLetterFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        DeadLetterFuture {
            state: State::Handling {
                fut: self.inner.call(msg.clone()),
                ctx: Some(Ctx {
                    msg,
                    publisher: Arc::clone(&self.publisher),
                    topic: Arc::clone(&self.topic),
                }),
            },
        }
    }
}

/// What publishing needs once the inner service failed.
struct Ctx {
    msg: Message,
    publisher: Arc<dyn Publisher>,
    topic: Arc<TopicName>,
}

impl Ctx {
    async fn publish(self, err: Error) -> Result<Outcome, Error> {
        let Ctx {
            msg,
            publisher,
            topic,
        } = self;
        let record = record_for(&msg, &err, &topic);
        let dlq = record.topic.clone();
        match publisher.publish(record).await {
            Ok(()) => {
                tracing::warn!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    dlq = %dlq,
                    error = %err,
                    "dead-lettered"
                );
                Ok(Outcome::DeadLettered)
            }
            Err(source) => Err(Error::DeadLetter {
                topic: dlq,
                source,
                cause: Box::new(err),
            }),
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Handling {
            #[pin]
            fut: F,
            ctx: Option<Ctx>,
        },
        Publishing {
            fut: BoxFuture<'static, Result<Outcome, Error>>,
        },
    }
}

pin_project! {
    /// The future of [`DeadLetter`]: the inner call inline, the publish (rare) boxed.
    pub struct DeadLetterFuture<F> {
        #[pin]
        state: State<F>,
    }
}

impl<F> std::fmt::Debug for DeadLetterFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for DeadLetterFuture<F>
where
    F: Future<Output = Result<Outcome, E>>,
    E: Into<Error>,
{
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Handling { fut, ctx } => {
                    let err: Error = match fut.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(outcome)) => return Poll::Ready(Ok(outcome)),
                        Poll::Ready(Err(e)) => e.into(),
                    };
                    let Some(ctx) = ctx.take().filter(|_| err.class() != ErrorClass::Deferred)
                    else {
                        return Poll::Ready(Err(err));
                    };
                    state.set(State::Publishing {
                        fut: Box::pin(ctx.publish(err)),
                    });
                }
                StateProj::Publishing { fut } => return fut.as_mut().poll(cx),
            }
        }
    }
}

/// The dead-letter record for `msg` failing with `err`.
pub(crate) fn record_for(msg: &Message, err: &Error, topic: &TopicName) -> DeadLetterRecord {
    let mut headers = msg.headers().clone();
    let set = |h: &mut gregor_event::Headers, k: &str, v: &str| h.insert(k, v.as_bytes());
    set(&mut headers, super::ERROR, &chain(err));
    set(&mut headers, super::ERROR_CLASS, err.class().as_str());
    set(&mut headers, super::RETRY_COUNT, &msg.retries().to_string());
    set(&mut headers, super::ORIGINAL_TOPIC, msg.topic());
    set(
        &mut headers,
        super::ORIGINAL_PARTITION,
        &msg.partition().to_string(),
    );
    set(
        &mut headers,
        super::ORIGINAL_OFFSET,
        &msg.offset().to_string(),
    );
    set(
        &mut headers,
        super::ORIGINAL_TIMESTAMP,
        &msg.timestamp_ms().to_string(),
    );
    set(
        &mut headers,
        super::CONSUMER_GROUP,
        msg.group().unwrap_or(""),
    );
    DeadLetterRecord {
        topic: topic.for_topic(msg.topic()),
        key: msg.key().cloned(),
        value: msg.value().cloned(),
        headers,
    }
}
