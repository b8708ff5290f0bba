use std::sync::Arc;
use std::task::{Context, Poll};

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
    type Future = BoxFuture<'static, Result<Outcome, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, msg: Message) -> Self::Future {
        let fut = self.inner.call(msg.clone());
        let publisher = Arc::clone(&self.publisher);
        let topic = Arc::clone(&self.topic);
        Box::pin(async move {
            let err = match fut.await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => e.into(),
            };
            if err.class() == ErrorClass::Deferred {
                return Err(err);
            }
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
        })
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
