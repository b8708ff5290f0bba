//! The Avro schemas of gregor's events, shipped with the crate (`schemas/*.avsc`).
//!
//! A test parses each file with apache-avro and round-trips the Rust type through it, so the
//! files and the types cannot drift apart.

/// `schemas/order_event.avsc`: [`crate::OrderEvent`] (record `dev.gregor.events.OrderEvent`).
pub const ORDER_EVENT: &str = include_str!("../schemas/order_event.avsc");

/// `schemas/event.avsc`: the [`crate::Event`] envelope (record `dev.gregor.events.Event`).
pub const EVENT: &str = include_str!("../schemas/event.avsc");
