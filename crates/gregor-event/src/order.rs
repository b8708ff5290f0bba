//! The order events of the demo services.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::typed::TypedEvent;

/// Where an order is in its life; each status is one event type (`order.<status>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Placed by the user.
    Created,
    /// Payment captured.
    Paid,
    /// Handed to the carrier.
    Shipped,
    /// Received by the user.
    Delivered,
    /// Cancelled before delivery.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in the order of the Avro enum's symbols.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Created,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The event type of an order in this status.
    pub fn event_type(self) -> &'static str {
        match self {
            OrderStatus::Created => "order.created",
            OrderStatus::Paid => "order.paid",
            OrderStatus::Shipped => "order.shipped",
            OrderStatus::Delivered => "order.delivered",
            OrderStatus::Cancelled => "order.cancelled",
        }
    }

    /// The status as written in JSON and Avro (`created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Product id.
    pub product_id: String,
    /// How many (Avro `int`).
    pub quantity: u32,
    /// Unit price.
    pub price: Money,
}

/// An order event: its key is the user id, so one user's orders stay in order.
///
/// ```
/// use gregor_event::{Item, Money, OrderEvent, OrderStatus, TypedEvent};
/// let order = OrderEvent {
///     order_id: "o-1".into(),
///     user_id: "u-7".into(),
///     status: OrderStatus::Created,
///     amount: Money::parse("25.98")?,
///     items: vec![Item { product_id: "p-1".into(), quantity: 2, price: Money::parse("12.99")? }],
///     created_at: gregor_event::time::now(),
/// };
/// assert_eq!(order.key(), "u-7");
/// assert_eq!(order.event_type(), "order.created");
/// assert_eq!(order.items_total(), Some(order.amount));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Order id.
    pub order_id: String,
    /// The user who placed it: the record key.
    pub user_id: String,
    /// Status; decides the event type.
    pub status: OrderStatus,
    /// Order total.
    pub amount: Money,
    /// Lines.
    pub items: Vec<Item>,
    /// When the order was placed (microsecond precision).
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
}

impl OrderEvent {
    /// Sum of `quantity * price` over the items; `None` on overflow of the money range.
    pub fn items_total(&self) -> Option<Money> {
        self.items.iter().try_fold(Money::ZERO, |sum, item| {
            sum.checked_add(item.price.checked_mul(i64::from(item.quantity))?)
        })
    }
}

impl TypedEvent for OrderEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "order.created",
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.cancelled",
    ];

    fn event_type(&self) -> &'static str {
        self.status.event_type()
    }

    fn key(&self) -> &str {
        &self.user_id
    }
}
