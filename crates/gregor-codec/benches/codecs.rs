//! Encode and decode an OrderEvent with 3 items, JSON and Avro (Confluent framing, schema id
//! cached after a warm-up against the real registry from gregor-testkit).
//!
//! cargo bench -p gregor-codec --bench codecs
//!
//! Criterion prints time per iteration (= ns per event) and throughput in MiB/s of encoded bytes.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gregor_codec::{
    AvroCodec, AvroConfig, Context, Deserializer, HttpRegistry, JsonCodec, Serializer,
};
use gregor_event::{Headers, Item, Money, OrderEvent, OrderStatus};

fn order() -> OrderEvent {
    let items: Vec<Item> = (0..3)
        .map(|i| Item {
            product_id: format!("product-{i:04}"),
            quantity: i + 1,
            price: Money::from_cents(1999 + i64::from(i) * 250).expect("in range"),
        })
        .collect();
    OrderEvent {
        order_id: "ord-2026-000123".into(),
        user_id: "user-000042".into(),
        status: OrderStatus::Created,
        amount: Money::from_cents(12_994).expect("in range"),
        items,
        created_at: gregor_event::time::parse_rfc3339("2026-01-02T03:04:05.678901Z")
            .expect("valid"),
    }
}

/// Polls a future that must complete at once: a warmed-up codec never waits.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the codec waited: its caches are not warm"),
    }
}

fn codecs(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let topic = gregor_testkit::unique_topic("bench-orders");
    let ctx = Context::new(&topic);
    let order = order();
    let avro = rt.block_on(async {
        let registry = gregor_testkit::SchemaRegistry::shared()
            .await
            .unwrap_or_else(|e| panic!("the Avro benches need the schema registry: {e}"));
        let client = Arc::new(HttpRegistry::new(registry.url()).expect("registry client"));
        let codec =
            AvroCodec::<OrderEvent>::for_type(client, AvroConfig::default()).expect("codec");
        codec
            .prepare(&[topic.as_str()])
            .await
            .expect("register the schema");
        let bytes = codec.encode(&ctx, &order).await.expect("encode");
        assert_eq!(codec.decode(&ctx, &bytes).await.expect("decode"), order);
        codec
    });
    let json = JsonCodec::new();
    let json_bytes = json.encode(&ctx, &order).expect("json");
    let avro_bytes = ready(avro.encode(&ctx, &order)).expect("avro");
    println!(
        "OrderEvent with 3 items: JSON {} bytes, Avro {} bytes (5-byte header included)",
        json_bytes.len(),
        avro_bytes.len()
    );

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(json_bytes.len() as u64));
    g.bench_function("json", |b| {
        b.iter(|| json.encode(&ctx, black_box(&order)).expect("json"))
    });
    g.throughput(Throughput::Bytes(avro_bytes.len() as u64));
    g.bench_function("avro", |b| {
        b.iter(|| ready(avro.encode(&ctx, black_box(&order))).expect("avro"))
    });
    g.bench_function("avro_via_trait", |b| {
        let mut headers = Headers::new();
        b.iter(|| ready(avro.serialize(&ctx, &mut headers, black_box(&order))).expect("avro"))
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(json_bytes.len() as u64));
    g.bench_function("json", |b| {
        b.iter(|| {
            json.decode::<OrderEvent>(&ctx, black_box(&json_bytes))
                .expect("json")
        })
    });
    g.throughput(Throughput::Bytes(avro_bytes.len() as u64));
    g.bench_function("avro", |b| {
        b.iter(|| ready(avro.decode(&ctx, black_box(&avro_bytes))).expect("avro"))
    });
    g.bench_function("avro_via_trait", |b| {
        let headers = Headers::new();
        b.iter(|| {
            let v: OrderEvent =
                ready(avro.deserialize(&ctx, &headers, black_box(&avro_bytes))).expect("avro");
            v
        })
    });
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
