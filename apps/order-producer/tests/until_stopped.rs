//! `--count 0` sends until stopped: SIGTERM after a few seconds ends the run gracefully, every
//! record sent is acknowledged, and the broker holds exactly what the final totals say; while it
//! runs, /metrics (on loopback) shows the producer's own statistics (the real binary, the real
//! broker).

use std::process::Stdio;
use std::time::Duration;

use gregor::client::{Admin, ClientConfig, OffsetSpec};
use gregor_testkit::{Kafka, create_topic, unique_topic};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The body of `GET /metrics` at `addr`.
async fn scrape(addr: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics port");
    conn.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_zero_sends_until_sigterm_and_loses_nothing() {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let prefix = unique_topic("until-stopped").replace('-', "_") + ".orders";
    let topics: Vec<String> = ["created", "updated", "cancelled"]
        .iter()
        .map(|s| format!("{prefix}.{s}"))
        .collect();
    for t in &topics {
        create_topic(kafka.bootstrap(), t, 2, 1).await.unwrap();
    }

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .args(["-b", kafka.bootstrap(), "--topic-prefix", &prefix])
        .args([
            "--count",
            "0",
            "--rate",
            "400",
            "--metrics-port",
            "0",
            "--json",
        ])
        .args(["--poison-json", "1", "--unrouted", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("order-producer starts");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("order-producer prints its metrics address");
        if let Some(rest) = line.strip_prefix("metrics: http://") {
            break rest.trim_end_matches("/metrics").to_owned();
        }
    };
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback by default: {addr}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = scrape(&addr).await;
    let produced: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gregor_producer_records_total "))
        .expect("gregor_producer_records_total is served")
        .parse()
        .unwrap();
    assert!(produced > 0.0, "records acknowledged so far: {produced}");
    assert!(text.contains("gregor_producer_latency_seconds_bucket"));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("order-producer stops within 60 s of SIGTERM")
        .expect("output");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let line = String::from_utf8_lossy(&out.stdout);
    let totals: serde_json::Value =
        serde_json::from_str(line.lines().last().expect("a JSON line")).expect("JSON totals");
    let sent = totals["sent"].as_u64().unwrap();
    let acked = totals["acked"].as_u64().unwrap();
    assert!(
        sent > 100,
        "--count 0 kept sending until stopped (sent {sent} in 4 s at 400/s)"
    );
    assert_eq!(acked, sent, "every record sent is acknowledged: {totals}");
    assert_eq!(totals["failed"].as_u64(), Some(0));

    let admin = Admin::connect(
        &ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap())
            .unwrap(),
    )
    .await
    .unwrap();
    let specs: Vec<(&str, i32, OffsetSpec)> = topics
        .iter()
        .flat_map(|t| (0..2).map(move |p| (t.as_str(), p, OffsetSpec::Latest)))
        .collect();
    let on_broker: i64 = admin
        .list_offsets(&specs, false)
        .await
        .unwrap()
        .iter()
        .map(|o| o.offset.unwrap_or(0))
        .sum();
    assert_eq!(on_broker, i64::try_from(acked).unwrap());
}
