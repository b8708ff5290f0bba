//! Typed events: a Rust type for the data of one or more event types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::envelope::Event;
use crate::error::{Error, Result};

/// A Rust type that is the `data` of one or more event types.
///
/// The trait gives the event type a value is published as, its record key, and conversion to
/// and from the [`Event`] envelope. An envelope whose `type` the target does not know is an
/// [`Error::UnknownEventType`], never a panic.
///
/// ```
/// use gregor_event::{Event, TypedEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct UserRenamed { user_id: String, name: String }
///
/// impl TypedEvent for UserRenamed {
///     const EVENT_TYPES: &'static [&'static str] = &["user.renamed"];
///     fn event_type(&self) -> &'static str { "user.renamed" }
///     fn key(&self) -> &str { &self.user_id }
/// }
///
/// let e = UserRenamed { user_id: "u1".into(), name: "Ada".into() };
/// let envelope = e.to_event("user-service")?;
/// assert_eq!(envelope.event_type, "user.renamed");
/// assert_eq!(UserRenamed::from_event(&envelope)?, e);
///
/// let other = Event::new("user.deleted", "user-service", serde_json::json!({}));
/// assert!(UserRenamed::from_event(&other).is_err());
/// # Ok::<(), gregor_event::Error>(())
/// ```
pub trait TypedEvent: Serialize + DeserializeOwned {
    /// Every event type this Rust type carries.
    const EVENT_TYPES: &'static [&'static str];

    /// Schema version written to the `version` header.
    const VERSION: u32 = 1;

    /// The event type this value is published as; one of [`TypedEvent::EVENT_TYPES`].
    fn event_type(&self) -> &'static str;

    /// The record key: records with the same key stay in order on one partition.
    fn key(&self) -> &str;

    /// Wraps the value in a new envelope (fresh id, current time) from `source`.
    fn to_event(&self, source: &str) -> Result<Event> {
        let data = serde_json::to_value(self).map_err(|e| Error::Json {
            what: format!("writing the data of {}", self.event_type()),
            source: e,
        })?;
        Ok(Event::new(self.event_type(), source, data))
    }

    /// Reads the value from an envelope, checking that its type is one this type carries and
    /// that the data agrees with it.
    fn from_event(event: &Event) -> Result<Self> {
        if !Self::EVENT_TYPES.contains(&event.event_type.as_str()) {
            return Err(Error::UnknownEventType {
                event_type: event.event_type.clone(),
                expected: Self::EVENT_TYPES,
            });
        }
        let value = Self::deserialize(&event.data).map_err(|e| Error::Json {
            what: format!(
                "reading the data of {} event {}",
                event.event_type, event.id
            ),
            source: e,
        })?;
        if value.event_type() != event.event_type {
            return Err(Error::TypeMismatch {
                event_type: event.event_type.clone(),
                data_type: value.event_type().to_owned(),
            });
        }
        Ok(value)
    }
}
