//! gregor's Avro codec against the real schema registry from gregor-testkit (Apicurio's
//! Confluent API, or GREGOR_SCHEMA_REGISTRY_URL) and, for the last test, the real Kafka.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use gregor_codec::registry::{RegistryErrorKind, RetryPolicy};
use gregor_codec::{
    AvroCodec, AvroConfig, CodecConfig, CodecRegistry, Context, Error, HttpRegistry,
    RegistryClient, SubjectNameStrategy,
};
use gregor_event::{Headers, Item, Money, OrderEvent, OrderStatus};
use serde::{Deserialize, Serialize};

async fn registry() -> (String, Arc<HttpRegistry>) {
    let r = gregor_testkit::SchemaRegistry::shared()
        .await
        .unwrap_or_else(|e| panic!("the schema registry is needed: {e}"));
    (
        r.url().to_owned(),
        Arc::new(HttpRegistry::new(r.url()).unwrap()),
    )
}

fn order(i: u32) -> OrderEvent {
    OrderEvent {
        order_id: format!("o-{i}"),
        user_id: format!("u-{}", i % 7),
        status: OrderStatus::ALL[i as usize % 5],
        amount: Money::from_cents(i64::from(i) * 101 - 5000).unwrap(),
        items: (0..i % 4)
            .map(|j| Item {
                product_id: format!("p-{j}"),
                quantity: j + 1,
                price: Money::from_cents(1999 * i64::from(j)).unwrap(),
            })
            .collect(),
        created_at: chrono::DateTime::from_timestamp_micros(1_760_000_000_000_000 + i64::from(i))
            .unwrap(),
    }
}

/// A plain HTTP GET of the registry's REST API, independent of gregor's client.
fn rest_get(url: &str, path: &str) -> serde_json::Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, base) = rest
        .split_once('/')
        .map(|(a, b)| (a, format!("/{b}")))
        .unwrap_or((rest, String::new()));
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    write!(
        s,
        "GET {base}{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap() + 1;
    serde_json::from_str(&body[start..end]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_make_no_registry_calls_after_warm_up_and_match_the_registry() {
    let (url, client) = registry().await;
    let topic = gregor_testkit::unique_topic("codec-orders");
    let codec = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig::default(),
    )
    .unwrap();
    codec.prepare(&[topic.as_str()]).await.unwrap();
    let ctx = Context::new(&topic);
    let first = codec.encode(&ctx, &order(1)).await.unwrap();
    assert_eq!(codec.decode(&ctx, &first).await.unwrap(), order(1));
    let warm = client.requests();

    for i in 0..500 {
        let bytes = codec.encode(&ctx, &order(i)).await.unwrap();
        assert_eq!(
            codec
                .decode(&ctx.at(0, i64::from(i)), &bytes)
                .await
                .unwrap(),
            order(i)
        );
    }
    assert_eq!(
        client.requests(),
        warm,
        "a warmed-up codec must not call the registry"
    );

    // A second, cold codec (another service) needs exactly one request: the schema by id.
    let cold = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig::default(),
    )
    .unwrap();
    assert_eq!(cold.decode(&ctx, &first).await.unwrap(), order(1));
    assert_eq!(client.requests(), warm + 1);
    for _ in 0..100 {
        cold.decode(&ctx, &first).await.unwrap();
    }
    assert_eq!(client.requests(), warm + 1);

    // The payload decodes with the registry's own id and schema, fetched over its REST API and
    // read with apache-avro's generic reader (no gregor code on this side).
    assert_eq!(first[0], 0);
    let id = u32::from_be_bytes([first[1], first[2], first[3], first[4]]);
    let latest = rest_get(&url, &format!("/subjects/{topic}-value/versions/latest"));
    assert_eq!(latest["id"].as_u64(), Some(u64::from(id)));
    let by_id = rest_get(&url, &format!("/schemas/ids/{id}"));
    let schema = apache_avro::Schema::parse_str(by_id["schema"].as_str().unwrap()).unwrap();
    let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &first[5..])
        .unwrap();
    let Value::Record(fields) = value else {
        panic!("not a record: {value:?}")
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("order_id"), Value::String("o-1".into()));
    assert_eq!(get("status"), Value::Enum(1, "paid".into()));
    let Value::Decimal(amount) = get("amount") else {
        panic!("amount is not a decimal")
    };
    let amount_bytes: Vec<u8> = amount.try_into().unwrap();
    assert_eq!(
        Money::from_decimal_bytes(&amount_bytes).unwrap(),
        order(1).amount
    );
    assert_eq!(
        get("created_at"),
        Value::TimestampMicros(order(1).created_at.timestamp_micros())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_strategies_and_registration_switches() {
    let (_, client) = registry().await;
    let topic = gregor_testkit::unique_topic("codec-subjects");
    let ctx = Context::new(&topic);
    for (strategy, subject) in [
        (SubjectNameStrategy::TopicName, format!("{topic}-value")),
        (
            SubjectNameStrategy::RecordName,
            "dev.gregor.events.OrderEvent".to_owned(),
        ),
        (
            SubjectNameStrategy::TopicRecordName,
            format!("{topic}-dev.gregor.events.OrderEvent"),
        ),
    ] {
        let config = AvroConfig {
            subject_strategy: strategy,
            ..AvroConfig::default()
        };
        let codec =
            AvroCodec::<OrderEvent>::for_type(Arc::<HttpRegistry>::clone(&client), config).unwrap();
        assert_eq!(codec.subject(&topic, false), subject);
        let bytes = codec.encode(&ctx, &order(2)).await.unwrap();
        let latest = client.latest(&subject).await.unwrap().expect("registered");
        assert_eq!(&bytes[1..5], latest.id.to_be_bytes(), "{strategy:?}");
        assert_eq!(codec.decode(&ctx, &bytes).await.unwrap(), order(2));
    }

    // auto_register off: the schema must exist; on a fresh subject it is a startup error.
    let fresh = gregor_testkit::unique_topic("codec-lookup");
    let lookup = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig {
            auto_register: false,
            ..AvroConfig::default()
        },
    )
    .unwrap();
    let err = lookup.prepare(&[fresh.as_str()]).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotRegistered { subject, .. } if *subject == format!("{fresh}-value")),
        "{err}"
    );
    let latest_codec = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig {
            auto_register: false,
            use_latest_version: true,
            ..AvroConfig::default()
        },
    )
    .unwrap();
    assert!(matches!(
        latest_codec.prepare(&[fresh.as_str()]).await,
        Err(Error::NotRegistered { .. })
    ));

    let registering = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig::default(),
    )
    .unwrap();
    let fctx = Context::new(&fresh);
    let written = registering.encode(&fctx, &order(3)).await.unwrap();
    let looked_up = lookup.encode(&fctx, &order(3)).await.unwrap();
    let with_latest = latest_codec.encode(&fctx, &order(3)).await.unwrap();
    assert_eq!(written, looked_up);
    assert_eq!(written, with_latest);
}

// apache-avro's serde reader checks the Rust type's serde name against the record name, so
// each version carries the record's name.

/// Version 1 of a test record: with an optional coupon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Evolving")]
struct OrderV1 {
    id: String,
    coupon: Option<String>,
}

/// Version 2: the coupon removed, a note with a default added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Evolving")]
struct OrderV2 {
    id: String,
    note: String,
}

/// Version 3: `id` changed from string to long, which no reader of v2 data can accept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Evolving")]
struct OrderV3 {
    id: i64,
}

const V1: &str = r#"{"type":"record","name":"Evolving","namespace":"dev.gregor.test","fields":[
    {"name":"id","type":"string"},{"name":"coupon","type":["null","string"],"default":null}]}"#;
const V2: &str = r#"{"type":"record","name":"Evolving","namespace":"dev.gregor.test","fields":[
    {"name":"id","type":"string"},{"name":"note","type":"string","default":"none"}]}"#;
const V3: &str = r#"{"type":"record","name":"Evolving","namespace":"dev.gregor.test","fields":[
    {"name":"id","type":"long"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evolution_resolves_and_incompatible_changes_fail_at_startup() {
    let (_, client) = registry().await;
    let topic = gregor_testkit::unique_topic("codec-evolution");
    let ctx = Context::new(&topic);
    let v1 = AvroCodec::<OrderV1>::new(
        Arc::<HttpRegistry>::clone(&client),
        V1,
        AvroConfig::default(),
    )
    .unwrap();
    v1.prepare(&[topic.as_str()]).await.unwrap();
    client
        .set_compatibility(&format!("{topic}-value"), "BACKWARD")
        .await
        .unwrap();
    let old = v1
        .encode(
            &ctx,
            &OrderV1 {
                id: "a".into(),
                coupon: Some("SAVE10".into()),
            },
        )
        .await
        .unwrap();

    let v2 = AvroCodec::<OrderV2>::new(
        Arc::<HttpRegistry>::clone(&client),
        V2,
        AvroConfig::default(),
    )
    .unwrap();
    v2.prepare(&[topic.as_str()]).await.unwrap();
    // Written with v1, read as v2: the removed coupon is skipped, the added note defaulted.
    assert_eq!(
        v2.decode(&ctx, &old).await.unwrap(),
        OrderV2 {
            id: "a".into(),
            note: "none".into()
        }
    );
    let new = v2
        .encode(
            &ctx,
            &OrderV2 {
                id: "b".into(),
                note: "gift".into(),
            },
        )
        .await
        .unwrap();
    assert_ne!(new[1..5], old[1..5], "v2 has its own id");
    assert_eq!(
        v2.decode(&ctx, &new).await.unwrap(),
        OrderV2 {
            id: "b".into(),
            note: "gift".into()
        }
    );
    // And an old reader reads new data: the note is ignored, the coupon takes its default.
    assert_eq!(
        v1.decode(&ctx, &new).await.unwrap(),
        OrderV1 {
            id: "b".into(),
            coupon: None
        }
    );

    let v3 = AvroCodec::<OrderV3>::new(
        Arc::<HttpRegistry>::clone(&client),
        V3,
        AvroConfig::default(),
    )
    .unwrap();
    let err = v3.prepare(&[topic.as_str()]).await.unwrap_err();
    match &err {
        Error::Incompatible { subject, message } => {
            assert_eq!(*subject, format!("{topic}-value"));
            assert!(!message.is_empty());
        }
        other => panic!("expected Incompatible, got {other}"),
    }
    assert!(!err.is_retriable());
    // v3 cannot read v2 data either: a typed error for the record, not a panic.
    let err = v3.decode(&ctx.at(1, 7), &new).await.unwrap_err();
    assert!(err.to_string().contains("partition 1 offset 7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_typed_errors_naming_the_record() {
    let (_, client) = registry().await;
    let topic = gregor_testkit::unique_topic("codec-bad");
    let codec = AvroCodec::<OrderEvent>::for_type(
        Arc::<HttpRegistry>::clone(&client),
        AvroConfig::default(),
    )
    .unwrap();
    let ctx = Context::new(&topic).at(3, 42);
    let good = codec.encode(&ctx, &order(3)).await.unwrap();
    codec.decode(&ctx, &good).await.unwrap();
    let where_ = "partition 3 offset 42";

    for len in 0..5 {
        let err = codec.decode(&ctx, &good[..len]).await.unwrap_err();
        assert!(matches!(err, Error::ShortPayload { .. }), "{err}");
        assert!(err.to_string().contains(where_));
    }
    let mut magic = good.clone();
    magic[0] = 1;
    assert!(matches!(
        codec.decode(&ctx, &magic).await,
        Err(Error::BadMagic { magic: 1, .. })
    ));
    let mut negative = good.clone();
    negative[1] = 0x80;
    assert!(matches!(
        codec.decode(&ctx, &negative).await,
        Err(Error::NegativeSchemaId { .. })
    ));

    let before = client.requests();
    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&(i32::MAX as u32).to_be_bytes());
    let err = codec.decode(&ctx, &unknown).await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownSchemaId { id, .. } if id == i32::MAX as u32),
        "{err}"
    );
    assert!(err.to_string().contains(where_));
    assert!(!err.is_retriable());
    // The registry said no once; the next records with that id are answered from memory.
    assert!(matches!(
        codec.decode(&ctx, &unknown).await,
        Err(Error::UnknownSchemaId { .. })
    ));
    assert_eq!(client.requests(), before + 1);

    for cut in 5..good.len() {
        let err = codec.decode(&ctx, &good[..cut]).await.unwrap_err();
        assert!(matches!(err, Error::Avro { .. }), "cut {cut}: {err}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        codec.decode(&ctx, &trailing).await,
        Err(Error::TrailingBytes { extra: 1, .. })
    ));
    // order_id claims 2^40 bytes: refused against the allocation limit, nothing allocated.
    let mut huge = good[..5].to_vec();
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    let err = codec.decode(&ctx, &huge).await.unwrap_err();
    assert!(matches!(err, Error::Avro { .. }), "{err}");
    // status claims enum index 100.
    let mut corrupt = good[..5].to_vec();
    corrupt.extend_from_slice(&[0, 0, 200, 1]);
    assert!(codec.decode(&ctx, &corrupt).await.is_err());

    // JSON that does not match, through the same trait.
    let json = gregor_codec::JsonCodec::new();
    let err = gregor_codec::Deserializer::<OrderEvent>::deserialize(
        &json,
        &ctx,
        &Headers::new(),
        br#"{"order_id":"o","amount":"1.001"}"#,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Json { .. }) && err.to_string().contains(where_),
        "{err}"
    );
}

/// Reads (and ignores) what the client sent: the request is not parsed, so one read will do.
#[allow(clippy::disallowed_methods)]
async fn swallow_request(sock: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let _ = sock.read(&mut buf).await;
}

/// A TCP server on 127.0.0.1 that answers every request with `response` (or never, if `None`),
/// for as long as the test runs.
async fn misbehaving_server(response: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                swallow_request(&mut sock).await;
                match response {
                    Some(r) => {
                        let _ = sock.write_all(r.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_outages_end_in_bounded_retries() {
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(300),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        deadline: Duration::from_secs(5),
    };
    // Unreachable: a port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unreachable =
        HttpRegistry::with_policy(&format!("http://127.0.0.1:{closed}"), policy).unwrap();
    let e = unreachable.schema_by_id(1).await.unwrap_err();
    assert!(matches!(e.kind, RegistryErrorKind::Unreachable(_)), "{e}");
    assert_eq!((e.attempts, unreachable.requests()), (3, 3));
    assert!(e.is_retriable());

    // 5xx every time.
    let body = r#"{"error_code":50001,"message":"storage down"}"#;
    let reply: &'static str = Box::leak(
        format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            .into_boxed_str(),
    );
    let failing =
        HttpRegistry::with_policy(&misbehaving_server(Some(reply)).await, policy).unwrap();
    let e = failing.register("s", "{}").await.unwrap_err();
    assert_eq!(
        (e.status(), e.error_code(), e.attempts),
        (Some(503), Some(50001), 3),
        "{e}"
    );

    // Slow: accepts, never answers. Each attempt times out; the call ends after 3.
    let slow = HttpRegistry::with_policy(&misbehaving_server(None).await, policy).unwrap();
    let e = slow.latest("s").await.unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.attempts),
        (RegistryErrorKind::Timeout, 3),
        "{e}"
    );

    // Through a codec: the record's error is a retriable registry error, not a decode error.
    let codec =
        AvroCodec::<OrderEvent>::for_type(Arc::new(failing), AvroConfig::default()).unwrap();
    let err = codec
        .decode(&Context::new("t"), &[0, 0, 0, 0, 7, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Registry(_)) && err.is_retriable(),
        "{err}"
    );
    let err = codec.prepare(&["t"]).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_registry_from_yaml_and_avro_through_kafka() {
    let (url, _) = registry().await;
    let kafka = gregor_testkit::Kafka::shared()
        .await
        .unwrap_or_else(|e| panic!("Kafka is needed: {e}"));
    let avro_topic = gregor_testkit::unique_topic("codec-kafka-avro");
    let json_topic = format!("json.{}", gregor_testkit::unique_topic("orders"));
    let yaml = format!(
        "schema_registry:\n  url: {url}\n  request_timeout_ms: 5000\ndefault: {{ codec: json }}\ntopics:\n  - topic: {avro_topic}\n    codec: avro\n    subject_strategy: topic_name\n  - prefix: json.\n    codec: json\n"
    );
    let config = CodecConfig::from_yaml(&yaml).unwrap();
    let codecs =
        CodecRegistry::<OrderEvent>::from_config(&config, Some(gregor_event::avro::ORDER_EVENT))
            .unwrap();
    codecs
        .prepare(&[avro_topic.as_str(), json_topic.as_str()])
        .await
        .unwrap();
    assert_eq!(codecs.codec_for(&avro_topic).unwrap().name(), "avro");
    assert_eq!(codecs.codec_for(&json_topic).unwrap().name(), "json");

    for topic in [&avro_topic, &json_topic] {
        gregor_testkit::create_topic(kafka.bootstrap(), topic, 1, 1)
            .await
            .unwrap();
        let client = gregor_testkit::rskafka_client(kafka.bootstrap(), Duration::from_secs(30))
            .await
            .unwrap();
        let partition = client
            .partition_client(
                topic.as_str(),
                0,
                rskafka::client::partition::UnknownTopicHandling::Retry,
            )
            .await
            .unwrap();
        let codec = codecs.codec_for(topic).unwrap();
        let mut records = Vec::new();
        for i in 0..3 {
            let mut headers = Headers::new();
            let value = codec
                .serialize(&Context::new(topic), &mut headers, &order(i))
                .await
                .unwrap();
            records.push(rskafka::record::Record {
                key: Some(order(i).user_id.into_bytes()),
                value: Some(value),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            });
        }
        partition
            .produce(
                records,
                rskafka::client::partition::Compression::NoCompression,
            )
            .await
            .unwrap();
        let (fetched, _) = partition
            .fetch_records(0, 1..1_000_000, 5_000)
            .await
            .unwrap();
        assert_eq!(fetched.len(), 3);
        for r in fetched {
            let ctx = Context::new(topic).at(0, r.offset);
            let payload = r.record.value.unwrap();
            let got: OrderEvent = codec
                .deserialize(&ctx, &Headers::new(), &payload)
                .await
                .unwrap();
            assert_eq!(got, order(u32::try_from(r.offset).unwrap()));
            if topic == &avro_topic {
                assert_eq!(payload[0], 0, "Confluent framing on the wire");
            } else {
                assert_eq!(payload[0], b'{');
            }
        }
    }
}
