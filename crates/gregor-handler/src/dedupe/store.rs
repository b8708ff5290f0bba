use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::error::BoxError;

/// Where dedupe keys live: in memory ([`MemoryStore`]) or a shared store (Redis, a table) for
/// several consumers.
///
/// ```
/// use futures::future::BoxFuture;
/// use gregor_handler::BoxError;
/// use gregor_handler::dedupe::DedupeStore;
///
/// /// Remembers nothing: every event is new.
/// struct Never;
/// impl DedupeStore for Never {
///     fn seen<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<bool, BoxError>> {
///         Box::pin(async { Ok(false) })
///     }
///     fn remember<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait DedupeStore: Send + Sync + 'static {
    /// Whether `key` was remembered and has not expired.
    fn seen<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BoxError>>;
    /// Remembers `key` for the store's window.
    fn remember<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// A bounded in-memory window: keys expire after `ttl`, and past `capacity` the oldest go.
#[derive(Debug)]
pub struct MemoryStore {
    ttl: Duration,
    capacity: usize,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    expires: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl MemoryStore {
    /// Keys live `ttl`; at most `capacity` are kept (at least 1).
    pub fn new(ttl: Duration, capacity: usize) -> MemoryStore {
        MemoryStore {
            ttl,
            capacity: capacity.max(1),
            state: Mutex::new(Window::default()),
        }
    }

    /// Keys held now (expired ones included until the next access).
    pub fn len(&self) -> usize {
        self.window().expires.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn evict(&self, w: &mut Window, now: Instant) {
        while let Some((at, _)) = w.order.front() {
            let expired = *at <= now;
            if !expired && w.expires.len() <= self.capacity {
                break;
            }
            let Some((at, key)) = w.order.pop_front() else {
                break;
            };
            // Only drop the entry this queue slot stands for (a key remembered again later
            // has a newer slot).
            if w.expires.get(&key) == Some(&at) {
                w.expires.remove(&key);
            }
        }
    }
}

impl DedupeStore for MemoryStore {
    fn seen<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BoxError>> {
        let now = Instant::now();
        let mut w = self.window();
        self.evict(&mut w, now);
        let seen = w.expires.get(key).is_some_and(|at| *at > now);
        Box::pin(async move { Ok(seen) })
    }

    fn remember<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        let now = Instant::now();
        let at = now + self.ttl;
        let mut w = self.window();
        w.expires.insert(key.to_owned(), at);
        w.order.push_back((at, key.to_owned()));
        self.evict(&mut w, now);
        Box::pin(async { Ok(()) })
    }
}
