//! The shipped .avsc files and the Rust types agree: same field names in the same order, and
//! values round-trip through apache-avro with those schemas on the serde path (what
//! gregor-codec uses) and on the Value path (what schema resolution uses). Money, timestamps
//! and ids survive JSON, Avro and the envelope unchanged.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use gregor_event::{Event, Item, Money, OrderEvent, OrderStatus, TypedEvent, avro};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn sample_order() -> OrderEvent {
    OrderEvent {
        order_id: "o-1".into(),
        user_id: "u-7".into(),
        status: OrderStatus::Paid,
        amount: Money::parse("-1234567.89").unwrap(),
        items: vec![
            Item {
                product_id: "p-1".into(),
                quantity: 2,
                price: Money::parse("0.01").unwrap(),
            },
            Item {
                product_id: "p-2".into(),
                quantity: u32::MAX,
                price: Money::parse("9999999999999.99").unwrap(),
            },
        ],
        created_at: gregor_event::time::parse_rfc3339("2026-02-03T04:05:06.789012Z").unwrap(),
    }
}

fn avro_round_trip<T: Serialize + DeserializeOwned>(schema: &Schema, value: &T) -> (T, T) {
    let bytes = GenericDatumWriter::builder(schema)
        .human_readable(false)
        .build()
        .unwrap()
        .write_ser_to_vec(value)
        .unwrap();
    let reader = GenericDatumReader::builder(schema)
        .human_readable(false)
        .build()
        .unwrap();
    let fast: T = reader.read_deser(&mut bytes.as_slice()).unwrap();
    let v = reader.read_value(&mut bytes.as_slice()).unwrap();
    let slow: T = apache_avro::from_value(&v).unwrap();
    (fast, slow)
}

/// Field names of a record schema, in order, and of its nested record fields.
fn record_fields(schema: &serde_json::Value) -> Vec<String> {
    schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

fn json_fields<T: Serialize>(value: &T) -> Vec<String> {
    // serde_json preserves struct field order only with preserve_order; serialize to text and
    // read the keys in order instead.
    let text = serde_json::to_string(value).unwrap();
    let mut de = serde_json::Deserializer::from_str(&text);
    let map: Vec<(String, serde::de::IgnoredAny)> = serde::Deserialize::deserialize(&mut de)
        .map(|m: OrderedMap| m.0)
        .unwrap();
    map.into_iter().map(|(k, _)| k).collect()
}

struct OrderedMap(Vec<(String, serde::de::IgnoredAny)>);

impl<'de> serde::Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    out.push(entry);
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[test]
fn order_event_avsc_matches_the_rust_type() {
    let raw: serde_json::Value = serde_json::from_str(avro::ORDER_EVENT).unwrap();
    let order = sample_order();
    assert_eq!(record_fields(&raw), json_fields(&order));
    let item_schema = &raw["fields"][4]["type"]["items"];
    assert_eq!(record_fields(item_schema), json_fields(&order.items[0]));
    let symbols: Vec<String> = raw["fields"][2]["type"]["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let ours: Vec<String> = OrderStatus::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(symbols, ours);

    let schema = Schema::parse_str(avro::ORDER_EVENT).unwrap();
    let (fast, slow) = avro_round_trip(&schema, &order);
    assert_eq!(fast, order);
    assert_eq!(slow, order);
}

#[test]
fn event_avsc_matches_the_envelope() {
    let raw: serde_json::Value = serde_json::from_str(avro::EVENT).unwrap();
    let event = sample_order()
        .to_event("order-service")
        .unwrap()
        .with_metadata("region", "eu");
    assert_eq!(record_fields(&raw), json_fields(&event));
    assert_eq!(
        json_fields(&event),
        ["id", "type", "timestamp", "source", "data", "metadata"]
    );
    let schema = Schema::parse_str(avro::EVENT).unwrap();
    let (fast, slow) = avro_round_trip(&schema, &event);
    assert_eq!(fast, event);
    assert_eq!(slow, event);
    assert_eq!(OrderEvent::from_event(&fast).unwrap(), sample_order());
}

#[test]
fn json_uses_the_go_layout_names_and_exact_money() {
    let order = sample_order();
    let json = serde_json::to_value(&order).unwrap();
    assert_eq!(json["amount"], serde_json::json!(-1234567.89));
    assert_eq!(
        json["items"][1]["price"],
        serde_json::json!(9999999999999.99)
    );
    assert_eq!(json["created_at"], "2026-02-03T04:05:06.789012Z");
    assert_eq!(json["status"], "paid");
    let go = r#"{"order_id":"o","user_id":"u","status":"created","amount":10.5,
        "items":[{"product_id":"p","quantity":1,"price":"10.50"}],"created_at":"2026-01-01T00:00:00Z"}"#;
    let parsed: OrderEvent = serde_json::from_str(go).unwrap();
    assert_eq!(parsed.amount.cents(), 1050);
    assert_eq!(parsed.items_total(), Some(parsed.amount));
    // A type that does not match is an error, not a panic or a default.
    for bad in [
        r#"{"order_id":"o"}"#,
        r#"{"order_id":"o","user_id":"u","status":"lost","amount":1,"items":[],"created_at":"2026-01-01T00:00:00Z"}"#,
        r#"{"order_id":"o","user_id":"u","status":"paid","amount":1.001,"items":[],"created_at":"2026-01-01T00:00:00Z"}"#,
        r#"{"order_id":"o","user_id":"u","status":"paid","amount":1,"items":[{"product_id":"p","quantity":-1,"price":1}],"created_at":"2026-01-01T00:00:00Z"}"#,
        r#"{"order_id":"o","user_id":"u","status":"paid","amount":1,"items":[],"created_at":"yesterday"}"#,
    ] {
        assert!(serde_json::from_str::<OrderEvent>(bad).is_err(), "{bad}");
    }
}

#[test]
fn envelope_type_checks() {
    let order = sample_order();
    let mut event = order.to_event("s").unwrap();
    event.event_type = "order.created".into();
    assert!(matches!(
        OrderEvent::from_event(&event),
        Err(gregor_event::Error::TypeMismatch { .. })
    ));
    event.event_type = "invoice.sent".into();
    assert!(matches!(
        OrderEvent::from_event(&event),
        Err(gregor_event::Error::UnknownEventType { .. })
    ));
    let metadata_null = r#"{"id":"0b7a7a8e-7a7e-4c1a-9a57-0d4a3e1f2b3c","type":"x","timestamp":"2026-01-01T00:00:00Z","source":"s","data":null,"metadata":null}"#;
    assert!(
        Event::from_json(metadata_null.as_bytes())
            .unwrap()
            .metadata
            .is_empty()
    );
    assert!(Event::from_json(b"{\"id\":\"nope\"}").is_err());
}

fn arb_money() -> impl Strategy<Value = Money> {
    (-gregor_event::MAX_CENTS..=gregor_event::MAX_CENTS).prop_map(|c| Money::from_cents(c).unwrap())
}

fn arb_order() -> impl Strategy<Value = OrderEvent> {
    (
        ".{0,12}",
        ".{0,12}",
        proptest::sample::select(OrderStatus::ALL.to_vec()),
        arb_money(),
        proptest::collection::vec((".{0,8}", any::<u32>(), arb_money()), 0..5),
        -62_135_596_800_000_000i64..253_402_300_799_999_999,
    )
        .prop_map(
            |(order_id, user_id, status, amount, items, micros)| OrderEvent {
                order_id,
                user_id,
                status,
                amount,
                items: items
                    .into_iter()
                    .map(|(product_id, quantity, price)| Item {
                        product_id,
                        quantity,
                        price,
                    })
                    .collect(),
                created_at: chrono::DateTime::from_timestamp_micros(micros).unwrap(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_order_survives_json_avro_and_the_envelope(order in arb_order()) {
        let schema = Schema::parse_str(avro::ORDER_EVENT).unwrap();
        let json = serde_json::to_vec(&order).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<OrderEvent>(&json).unwrap(), &order);
        let (fast, slow) = avro_round_trip(&schema, &order);
        prop_assert_eq!(&fast, &order);
        prop_assert_eq!(&slow, &order);
        let event = order.to_event("p").unwrap();
        let back = Event::from_json(event.to_json().unwrap().as_bytes()).unwrap();
        prop_assert_eq!(&OrderEvent::from_event(&back).unwrap(), &order);
        let env_schema = Schema::parse_str(avro::EVENT).unwrap();
        let (env_fast, _) = avro_round_trip(&env_schema, &event);
        prop_assert_eq!(&OrderEvent::from_event(&env_fast).unwrap(), &order);
    }
}
