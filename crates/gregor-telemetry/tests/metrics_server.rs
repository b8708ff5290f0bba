//! The /metrics endpoint over real HTTP.

use std::sync::Arc;

use gregor_telemetry::MetricsServer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    topic: String,
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serves_the_registry_in_openmetrics_text() {
    let mut registry = Registry::default();
    let consumed = Family::<Labels, Counter>::default();
    registry.register(
        "kafka_messages_consumed",
        "Records consumed",
        consumed.clone(),
    );
    consumed
        .get_or_create(&Labels {
            topic: "commerce.orders.created".into(),
        })
        .inc_by(42);
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry))
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let reply = get(addr, "/metrics").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("application/openmetrics-text"), "{reply}");
    assert!(
        reply.contains("kafka_messages_consumed_total{topic=\"commerce.orders.created\"} 42"),
        "{reply}"
    );
    assert!(reply.trim_end().ends_with("# EOF"), "{reply}");

    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = MetricsServer::start(addr, Arc::new(Registry::default()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}
