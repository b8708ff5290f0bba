use std::sync::Arc;

use tower::Layer;

use super::service::Dedupe;
use super::store::DedupeStore;

/// Skips events already handled within the store's window (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use gregor_handler::dedupe::{DedupeLayer, MemoryStore};
///
/// let layer = DedupeLayer::new(Arc::new(MemoryStore::new(Duration::from_secs(600), 100_000)));
/// ```
#[derive(Clone)]
pub struct DedupeLayer {
    store: Arc<dyn DedupeStore>,
}

impl std::fmt::Debug for DedupeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupeLayer").finish_non_exhaustive()
    }
}

impl DedupeLayer {
    /// Dedupe through `store`.
    pub fn new(store: Arc<dyn DedupeStore>) -> DedupeLayer {
        DedupeLayer { store }
    }
}

impl<S> Layer<S> for DedupeLayer {
    type Service = Dedupe<S>;

    fn layer(&self, inner: S) -> Dedupe<S> {
        Dedupe {
            inner,
            store: Arc::clone(&self.store),
        }
    }
}
