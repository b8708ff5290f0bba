//! Batch handlers: a whole batch of one partition's records at a time.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use gregor_handler::{Error, Message};
use tower::Service;

/// Records of one partition, in offset order, handed to a batch handler together.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Batch {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The messages, decoded (a record that failed to decode is a poison message in place).
    pub messages: Vec<Message>,
}

impl Batch {
    /// A batch.
    pub fn new(topic: Arc<str>, partition: i32, messages: Vec<Message>) -> Batch {
        Batch {
            topic,
            partition,
            messages,
        }
    }
}

/// A batch handler failed at `index`: the records before it are done (committed), the record
/// at `index` goes to the worker's fallback stack (typically retry + dead-letter) or is
/// delivered again, and the records after it follow as the next batch.
#[derive(Debug, thiserror::Error)]
#[error("batch failed at index {index}: {error}")]
pub struct BatchError {
    /// Index of the first record not handled.
    pub index: usize,
    /// Why.
    #[source]
    pub error: Error,
}

impl BatchError {
    /// The batch failed at `index` with `error`.
    pub fn new(index: usize, error: Error) -> BatchError {
        BatchError { index, error }
    }
}

/// A type-erased batch handler.
pub type BoxBatchHandler = tower::util::BoxCloneSyncService<Batch, (), BatchError>;

/// A batch handler from an async function `Fn(Batch) -> Result<(), BatchError>`.
///
/// ```
/// use gregor::worker::{batch_handler_fn, Batch, BatchError};
///
/// let handler = batch_handler_fn(|batch: Batch| async move {
///     for (i, msg) in batch.messages.iter().enumerate() {
///         // e.g. one INSERT of many rows; report where it broke
///         msg.event().map_err(|e| BatchError::new(i, e))?;
///     }
///     Ok(())
/// });
/// ```
pub fn batch_handler_fn<F, Fut>(f: F) -> BoxBatchHandler
where
    F: Fn(Batch) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BatchError>> + Send + 'static,
{
    BoxBatchHandler::new(BatchFn { f })
}

#[derive(Clone)]
struct BatchFn<F> {
    f: F,
}

impl<F, Fut> Service<Batch> for BatchFn<F>
where
    F: Fn(Batch) -> Fut,
    Fut: Future<Output = Result<(), BatchError>> + Send + 'static,
{
    type Response = ();
    type Error = BatchError;
    type Future = BoxFuture<'static, Result<(), BatchError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BatchError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        Box::pin((self.f)(batch))
    }
}
