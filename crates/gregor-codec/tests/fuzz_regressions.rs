//! Inputs the fuzz driver (fuzz/, target `avro`) found, replayed through the codecs with their
//! writer schemas served by the real schema registry from gregor-testkit.
//!
//! The `resolve-path-*` payloads declare string, bytes or array lengths far beyond their few
//! hundred bytes. Read with a writer schema other than the reader's, they went to apache-avro's
//! resolving reader, which allocated each declared length (up to 16 MiB) before it found the
//! bytes missing. gregor now checks the datum against the writer schema first (every length
//! and block count against the bytes left), so they fail as a typed [`Error::Avro`] naming the
//! record and the schema id, before apache-avro sees them. The fuzz driver measures the heap
//! peak of the same inputs (`cargo run --release -- replay avro findings/avro/`).

use std::path::PathBuf;
use std::sync::Arc;

use gregor_codec::{AvroCodec, AvroConfig, Context, Error, HttpRegistry, RegistryClient};
use gregor_event::{Event, Item, Money, OrderEvent, OrderStatus};

fn findings() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings/avro")
}

/// The order schema as an older producer wrote it (the fuzz driver's schema id 2).
fn old_order_schema() -> String {
    let mut v: serde_json::Value = serde_json::from_str(gregor_event::avro::ORDER_EVENT).unwrap();
    v["fields"].as_array_mut().unwrap().push(serde_json::json!(
        {"name": "coupon", "type": ["null", "string"], "default": null}
    ));
    v.to_string()
}

#[tokio::test]
async fn resolving_path_findings_fail_typed_before_apache_avro_allocates() {
    let r = gregor_testkit::SchemaRegistry::shared()
        .await
        .unwrap_or_else(|e| panic!("the schema registry is needed: {e}"));
    let registry: Arc<dyn RegistryClient> = Arc::new(HttpRegistry::new(r.url()).unwrap());
    let topic = gregor_testkit::unique_topic("fuzz-avro");
    // The fuzz driver's ids: 2 the older order schema, 3 the envelope.
    let old_order = registry
        .register(&format!("{topic}-old-order"), &old_order_schema())
        .await
        .unwrap();
    let envelope = registry
        .register(&format!("{topic}-envelope"), gregor_event::avro::EVENT)
        .await
        .unwrap();
    let orders =
        AvroCodec::<OrderEvent>::for_type(Arc::clone(&registry), AvroConfig::default()).unwrap();
    let events = AvroCodec::<Event>::for_type(registry, AvroConfig::default()).unwrap();

    let mut files: Vec<PathBuf> = std::fs::read_dir(findings())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("resolve-path-"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "the six resolve-path findings: {files:?}");

    let ctx = Context::new(&topic).at(3, 42);
    for file in &files {
        let mut payload = std::fs::read(file).unwrap();
        let id = match u32::from_be_bytes(payload[1..5].try_into().unwrap()) {
            2 => old_order,
            3 => envelope,
            other => panic!("{}: schema id {other}", file.display()),
        };
        payload[1..5].copy_from_slice(&id.to_be_bytes());
        // The codec whose reader schema differs from the writer's takes the resolving path.
        let err = if id == old_order {
            orders.decode(&ctx, &payload).await.unwrap_err()
        } else {
            let err = orders.decode(&ctx, &payload).await.unwrap_err();
            // The envelope codec reads its own schema with the compiled reader: refused too.
            let own = events.decode(&ctx, &payload).await.unwrap_err();
            assert!(
                matches!(own, Error::Avro { .. }),
                "{}: {own}",
                file.display()
            );
            err
        };
        match &err {
            Error::Avro {
                at,
                schema_id,
                detail,
            } => {
                assert_eq!(*schema_id, id, "{}", file.display());
                assert_eq!(at.topic, topic);
                assert_eq!((at.partition, at.offset), (Some(3), Some(42)));
                assert!(
                    detail.contains("checked against the writer schema"),
                    "{}: refused by the bounded check, not by apache-avro: {detail}",
                    file.display()
                );
            }
            other => panic!("{}: not Error::Avro: {other}", file.display()),
        }
    }

    // A valid datum of the older schema still resolves to the current type.
    let order = OrderEvent {
        order_id: "o-1".into(),
        user_id: "u-1".into(),
        status: OrderStatus::Paid,
        amount: Money::from_cents(4200).unwrap(),
        items: vec![Item {
            product_id: "p-1".into(),
            quantity: 2,
            price: Money::from_cents(2100).unwrap(),
        }],
        created_at: chrono::DateTime::from_timestamp_micros(1_760_000_000_000_000).unwrap(),
    };
    let mut old = orders.encode(&Context::new(&topic), &order).await.unwrap();
    old[1..5].copy_from_slice(&old_order.to_be_bytes());
    old.extend_from_slice(&[2, 6, b'X', b'Y', b'Z']); // coupon: Some("XYZ")
    assert_eq!(orders.decode(&ctx, &old).await.unwrap(), order);
}

/// findings/avro/varint-overflow-vs-apache-avro.bin: a 10-byte varint whose last byte carries
/// bits past 64. apache-avro drops those bits and reads a value; gregor's compiled reader
/// refuses the datum, on purpose (the fuzz driver's agreement check accepts exactly this).
#[tokio::test]
async fn an_overflowing_varint_is_refused_typed() {
    let r = gregor_testkit::SchemaRegistry::shared()
        .await
        .unwrap_or_else(|e| panic!("the schema registry is needed: {e}"));
    let registry: Arc<dyn RegistryClient> = Arc::new(HttpRegistry::new(r.url()).unwrap());
    let topic = gregor_testkit::unique_topic("fuzz-varint");
    let id = registry
        .register(&format!("{topic}-value"), gregor_event::avro::ORDER_EVENT)
        .await
        .unwrap();
    let orders = AvroCodec::<OrderEvent>::for_type(registry, AvroConfig::default()).unwrap();
    let mut payload = std::fs::read(findings().join("varint-overflow-vs-apache-avro.bin")).unwrap();
    assert_eq!(
        &payload[1..5],
        &1u32.to_be_bytes(),
        "the driver's id 1: the order schema"
    );
    payload[1..5].copy_from_slice(&id.to_be_bytes());
    let err = orders
        .decode(&Context::new(&topic).at(0, 7), &payload)
        .await
        .unwrap_err();
    match &err {
        Error::Avro {
            schema_id, detail, ..
        } => {
            assert_eq!(*schema_id, id);
            assert!(detail.contains("varint overflows 64 bits"), "{detail}");
        }
        other => panic!("not Error::Avro: {other}"),
    }
}
