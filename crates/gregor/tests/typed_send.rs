//! Typed send against the real broker: the event's key picks the partition the Java client
//! would, the standard headers are set, the record time equals the `timestamp` header, and a
//! serializer that refuses sends nothing.

use std::time::{Duration, Instant};

use gregor::{Error, SendEvent};
use gregor_client::{Admin, ClientConfig, Consumer, NewTopic, Producer, Record, TopicPartition};
use gregor_partition::Murmur2;
use gregor_testkit::{Kafka, unique_topic};

async fn kafka() -> Kafka {
    Kafka::shared().await.expect("local Kafka")
}

fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("client.id", "producer-test")
        .unwrap()
}

async fn create(bootstrap: &str, topic: &NewTopic) {
    let admin = Admin::connect(&config(bootstrap)).await.expect("admin");
    admin
        .create_topics(std::slice::from_ref(topic))
        .await
        .expect("create topic");
    admin
        .wait_for_leaders(&[&topic.name], Duration::from_secs(30))
        .await
        .expect("leaders");
}

/// Every record of `topic` (partitions `0..partitions`), read with gregor's consumer until
/// `expected` arrived (or 60 s passed: then the test fails on the count).
async fn read_all(bootstrap: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Record> {
    let config = config(bootstrap)
        .set("auto.offset.reset", "earliest")
        .unwrap();
    let mut consumer = Consumer::connect(&config).await.expect("consumer");
    let parts: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&parts).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)).await {
            Ok(records) => out.extend(records),
            // Right after a topic is created the consumer may see NOT_LEADER_OR_FOLLOWER once.
            Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("poll: {e}"),
        }
    }
    // Anything beyond `expected` would be a duplicate or a stray record: look once more.
    out.extend(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll"),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_events_carry_their_key_and_standard_headers() {
    use gregor_codec::{BoxFuture, Context, EnvelopeCodec, Serializer};
    use gregor_event::{Headers, Item, Money, OrderEvent, OrderStatus, TypedEvent};

    struct Refuses;
    impl Serializer<OrderEvent> for Refuses {
        fn serialize<'a>(
            &'a self,
            ctx: &'a Context<'a>,
            _headers: &'a mut Headers,
            _value: &'a OrderEvent,
        ) -> BoxFuture<'a, gregor_codec::Result<Vec<u8>>> {
            let at = ctx.location();
            Box::pin(async move {
                Err(gregor_codec::Error::Serialize {
                    at,
                    detail: "refused on purpose".into(),
                })
            })
        }
    }

    let kafka = kafka().await;
    let topic = unique_topic("prod-typed");
    create(kafka.bootstrap(), &NewTopic::new(&topic, 3, 1)).await;
    let producer = Producer::connect(&config(kafka.bootstrap())).await.unwrap();
    let order = OrderEvent {
        order_id: "o-1".into(),
        user_id: "user-42".into(),
        status: OrderStatus::Paid,
        amount: Money::parse("25.98").unwrap(),
        items: vec![Item {
            product_id: "p-1".into(),
            quantity: 2,
            price: Money::parse("12.99").unwrap(),
        }],
        created_at: gregor_event::time::now(),
    };
    let codec = EnvelopeCodec::<OrderEvent>::new("order-service");
    let meta = producer
        .send_event(&topic, &order, &codec)
        .await
        .expect("typed send");
    assert_eq!(meta.partition, Murmur2::place(b"user-42", 3).unwrap());

    let e = producer
        .send_event(&topic, &order, &Refuses)
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Codec(_)), "{e}");
    assert!(e.to_string().contains("refused on purpose"), "{e}");
    producer.close().await.unwrap();

    let records = read_all(kafka.bootstrap(), &topic, 3, 1).await;
    assert_eq!(records.len(), 1, "the refused event was not sent");
    let r = &records[0];
    assert_eq!(r.key.as_deref(), Some(&b"user-42"[..]));
    let header = |k: &str| {
        r.header(k)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    assert_eq!(header("event-type").as_deref(), Some("order.paid"));
    assert_eq!(header("version"), Some(OrderEvent::VERSION.to_string()));
    let stamp = header("timestamp").expect("timestamp header");
    let parsed = chrono::DateTime::parse_from_rfc3339(&stamp).expect("RFC 3339");
    assert_eq!(
        parsed.timestamp_millis(),
        r.timestamp,
        "header and record time agree"
    );
    let event = gregor_event::Event::from_json(r.value.as_deref().unwrap()).expect("envelope");
    assert_eq!(OrderEvent::from_event(&event).unwrap(), order);
}
