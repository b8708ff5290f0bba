use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tower::Layer;

use super::service::Filter;
use crate::message::Message;

type Predicate = Arc<dyn Fn(&Message) -> bool + Send + Sync>;

/// Which messages reach the handler: an event-type allow-list, a time range, predicates.
/// All conditions must hold. The time is the event's timestamp, else the record's.
///
/// ```
/// use gregor_handler::filter::FilterLayer;
///
/// let only_orders = FilterLayer::new()
///     .allow_types(["order.created", "order.updated", "order.cancelled"])
///     .predicate(|msg| msg.key().is_some());
/// ```
#[derive(Clone, Default)]
pub struct FilterLayer {
    pub(super) rules: Arc<Rules>,
}

#[derive(Clone, Default)]
pub(super) struct Rules {
    pub(super) types: Option<HashSet<String>>,
    pub(super) from: Option<DateTime<Utc>>,
    pub(super) until: Option<DateTime<Utc>>,
    pub(super) predicates: Vec<Predicate>,
}

impl std::fmt::Debug for FilterLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterLayer")
            .field("types", &self.rules.types)
            .field("from", &self.rules.from)
            .field("until", &self.rules.until)
            .field("predicates", &self.rules.predicates.len())
            .finish()
    }
}

impl Rules {
    /// Whether `msg` goes on to the handler.
    pub(super) fn accepts(&self, msg: &Message) -> bool {
        if msg.is_poison() {
            // Nothing to judge it by: let the router fail it so the dead-letter layer sees it.
            return true;
        }
        if let Some(types) = &self.types {
            match msg.event_type() {
                Some(t) if types.contains(t) => {}
                _ => return false,
            }
        }
        if self.from.is_some() || self.until.is_some() {
            let t = msg
                .event_arc()
                .map(|e| e.timestamp)
                .or_else(|| msg.timestamp());
            let Some(t) = t else { return false };
            if self.from.is_some_and(|from| t < from) || self.until.is_some_and(|until| t >= until)
            {
                return false;
            }
        }
        self.predicates.iter().all(|p| p(msg))
    }
}

impl FilterLayer {
    /// Lets everything through until conditions are added.
    pub fn new() -> FilterLayer {
        FilterLayer::default()
    }

    fn edit(mut self, f: impl FnOnce(&mut Rules)) -> FilterLayer {
        f(Arc::make_mut(&mut self.rules));
        self
    }

    /// Only these event types (added to earlier ones); a message without a type is filtered.
    pub fn allow_types<I, T>(self, types: I) -> FilterLayer
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.edit(|r| {
            r.types
                .get_or_insert_with(HashSet::new)
                .extend(types.into_iter().map(Into::into));
        })
    }

    /// Only events at or after `from`.
    pub fn from(self, from: DateTime<Utc>) -> FilterLayer {
        self.edit(|r| r.from = Some(from))
    }

    /// Only events before `until`.
    pub fn until(self, until: DateTime<Utc>) -> FilterLayer {
        self.edit(|r| r.until = Some(until))
    }

    /// Only messages for which `f` is true.
    pub fn predicate(self, f: impl Fn(&Message) -> bool + Send + Sync + 'static) -> FilterLayer {
        self.edit(|r| r.predicates.push(Arc::new(f)))
    }
}

impl<S> Layer<S> for FilterLayer {
    type Service = Filter<S>;

    fn layer(&self, inner: S) -> Filter<S> {
        Filter {
            inner,
            rules: Arc::clone(&self.rules),
            filtered: super::service::FilterCounter::default(),
        }
    }
}
