//! The shared schema registry is a real Confluent-compatible registry: it starts (or is found),
//! answers the Confluent REST API, stores a schema and hands it back by id, and a second ask
//! reuses the same process.

use std::io::{Read, Write};
use std::net::TcpStream;

fn http(url: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, base) = rest
        .split_once('/')
        .map(|(a, b)| (a, format!("/{b}")))
        .unwrap_or((rest, String::new()));
    let mut stream = TcpStream::connect(authority).expect("connect to the registry");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {base}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Apicurio answers with a fixed length; tolerate chunked framing by taking the JSON part.
    let start = payload.find(['{', '[']).unwrap_or(0);
    let end = payload
        .rfind(['}', ']'])
        .map(|i| i + 1)
        .unwrap_or(payload.len());
    let json = serde_json::from_str(&payload[start..end]).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_registry_is_real_and_reused() {
    let registry = gregor_testkit::SchemaRegistry::shared()
        .await
        .unwrap_or_else(|e| panic!("no schema registry: {e}"));
    let url = registry.url().to_owned();

    let (status, subjects) = http(&url, "GET", "/subjects", None);
    assert_eq!(status, 200, "{subjects}");
    assert!(subjects.is_array());

    let subject = gregor_testkit::unique_topic("testkit-registry") + "-value";
    let schema = r#"{"type":"record","name":"Probe","namespace":"dev.gregor.test","fields":[{"name":"n","type":"long"}]}"#;
    let body = serde_json::json!({ "schema": schema }).to_string();
    let (status, registered) = http(
        &url,
        "POST",
        &format!("/subjects/{subject}/versions"),
        Some(&body),
    );
    assert_eq!(status, 200, "{registered}");
    let id = registered["id"].as_u64().expect("an id");

    let (status, by_id) = http(&url, "GET", &format!("/schemas/ids/{id}"), None);
    assert_eq!(status, 200, "{by_id}");
    let stored: serde_json::Value =
        serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::from_str::<serde_json::Value>(schema).unwrap()
    );

    // Same schema with other whitespace: the same version and id, as in Confluent's registry.
    let spaced = serde_json::json!({ "schema": schema.replace(',', ", ") }).to_string();
    let (status, again) = http(
        &url,
        "POST",
        &format!("/subjects/{subject}/versions"),
        Some(&spaced),
    );
    assert_eq!((status, again["id"].as_u64()), (200, Some(id)));

    let (status, missing) = http(&url, "GET", "/schemas/ids/2147483647", None);
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error_code"], 40403);

    if !registry.is_external() {
        let state = gregor_testkit::registry::registry_status().await.unwrap();
        assert_eq!(state.url, url);
        let again = gregor_testkit::registry::ensure_registry().await.unwrap();
        assert_eq!(
            again.pid, state.pid,
            "a second ask must reuse the running registry"
        );
    }
}
