use std::sync::Arc;

use tower::Layer;

use super::Publisher;
use super::service::DeadLetter;

/// How the dead-letter topic is named.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicName {
    /// The original topic plus this suffix (default `.dlq`: `commerce.orders.created.dlq`).
    Suffix(String),
    /// One topic for everything.
    Fixed(String),
}

impl TopicName {
    /// The dead-letter topic for records of `topic`.
    pub fn for_topic(&self, topic: &str) -> String {
        match self {
            TopicName::Suffix(s) => format!("{topic}{s}"),
            TopicName::Fixed(t) => t.clone(),
        }
    }
}

/// Publishes records whose handling failed to a dead-letter topic (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use gregor_handler::dead_letter::{DeadLetterLayer, TopicName};
/// # use gregor_handler::{BoxError, dead_letter::{DeadLetterRecord, Publisher}};
/// # struct Producer;
/// # impl Publisher for Producer {
/// #     fn publish(&self, _: DeadLetterRecord) -> futures::future::BoxFuture<'_, Result<(), BoxError>> { Box::pin(async { Ok(()) }) }
/// # }
/// let layer = DeadLetterLayer::new(Arc::new(Producer)).topic(TopicName::Fixed("orders.dlq".into()));
/// assert_eq!(layer.topic_for("commerce.orders.created"), "orders.dlq");
/// ```
#[derive(Clone)]
pub struct DeadLetterLayer {
    pub(super) publisher: Arc<dyn Publisher>,
    pub(super) topic: Arc<TopicName>,
}

impl std::fmt::Debug for DeadLetterLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterLayer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterLayer {
    /// Publishes through `publisher` to `<topic>.dlq`.
    pub fn new(publisher: Arc<dyn Publisher>) -> DeadLetterLayer {
        DeadLetterLayer {
            publisher,
            topic: Arc::new(TopicName::Suffix(".dlq".into())),
        }
    }

    /// How the dead-letter topic is named (default `TopicName::Suffix(".dlq")`).
    pub fn topic(mut self, name: TopicName) -> DeadLetterLayer {
        self.topic = Arc::new(name);
        self
    }

    /// The dead-letter topic for records of `topic`.
    pub fn topic_for(&self, topic: &str) -> String {
        self.topic.for_topic(topic)
    }
}

impl<S> Layer<S> for DeadLetterLayer {
    type Service = DeadLetter<S>;

    fn layer(&self, inner: S) -> DeadLetter<S> {
        DeadLetter {
            inner,
            publisher: Arc::clone(&self.publisher),
            topic: Arc::clone(&self.topic),
        }
    }
}
