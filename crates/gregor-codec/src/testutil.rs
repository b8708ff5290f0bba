//! Helpers for unit tests.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use gregor_event::{Item, Money, OrderEvent, OrderStatus};

/// Polls a future that completes without waiting (JSON, plain codecs, warmed caches).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was expected to complete without waiting"),
    }
}

/// An order with `n` items.
pub(crate) fn order(n: u32) -> OrderEvent {
    let items: Vec<Item> = (0..n)
        .map(|i| Item {
            product_id: format!("p-{i}"),
            quantity: i + 1,
            price: Money::from_cents(1999 + i64::from(i)).unwrap(),
        })
        .collect();
    OrderEvent {
        order_id: "o-123".into(),
        user_id: "u-42".into(),
        status: OrderStatus::Created,
        amount: items.iter().fold(Money::ZERO, |s, it| {
            s.checked_add(it.price.checked_mul(i64::from(it.quantity)).unwrap())
                .unwrap()
        }),
        items,
        created_at: gregor_event::time::parse_rfc3339("2026-01-02T03:04:05.678901Z").unwrap(),
    }
}
