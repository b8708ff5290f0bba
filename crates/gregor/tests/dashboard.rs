//! deployments/grafana (the dashboard and its provisioning) and deployments/prometheus (scrape
//! config and alert rules) cannot run here: no Docker, no Grafana. This test keeps them from
//! drifting away from the code:
//!
//! - the dashboard parses, panel ids are unique, every gridPos fits the 24-column grid without
//!   overlapping another panel, every query names the provisioned datasource uid, and the
//!   panels the operations guide describes are there (lag per partition, p50/p95/p99);
//! - every metric name in a dashboard query, a template variable or an alert rule is one that
//!   gregor really exports, found by running a Worker with the stack order-consumer uses on
//!   the real broker (a record processed, one retried, one dead-lettered) and scraping its
//!   `/metrics` over HTTP; and every family it exports is on the dashboard;
//! - docker-compose's grafana service pins the image whose schema
//!   deployments/grafana/schema-check validates against, binds to 127.0.0.1 and mounts the
//!   provisioning; Prometheus scrapes the apps' default `--metrics-port`s and loads the rules.
//!
//! What it cannot check, Grafana rendering the dashboard, is covered as far as possible by
//! `deployments/grafana/schema-check` (the dashboard type-checked against @grafana/schema).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor::Worker;
use gregor::client::{ClientConfig, Producer, ProducerRecord};
use gregor::codec::{CodecRegistry, JsonCodec};
use gregor::event::{Event, Item, Money, OrderEvent, OrderStatus, TypedEvent};
use gregor::handler::dead_letter::DeadLetterLayer;
use gregor::handler::metrics::Metrics;
use gregor::handler::retry::RetryLayer;
use gregor::handler::{Error, Fallback, Message, Router, Stack, handler_fn};
use gregor::telemetry::MetricsServer;
use gregor_testkit::{Kafka, create_topic, unique_topic};
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Series Prometheus makes itself (not exported by gregor) that queries may use.
const PROMETHEUS_OWN: &[&str] = &["up"];

fn deployments() -> PathBuf {
    gregor_testkit::workspace_root().join("deployments")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Yaml {
    let mut doc: Yaml = serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    doc.apply_merge().unwrap();
    doc
}

fn dashboard() -> Json {
    let path = deployments().join("grafana/dashboards/gregor.json");
    serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The uid of the Prometheus datasource the provisioning files create.
fn provisioned_uid() -> String {
    let dir = deployments().join("grafana/provisioning/datasources");
    let mut uids = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let doc = yaml(&entry.unwrap().path());
        for ds in doc["datasources"].as_sequence().unwrap() {
            if ds["type"].as_str() == Some("prometheus") {
                uids.push(ds["uid"].as_str().expect("a fixed uid").to_owned());
            }
        }
    }
    assert_eq!(uids.len(), 1, "one provisioned Prometheus datasource");
    uids.remove(0)
}

/// Metric names in a PromQL expression: identifiers that are not functions, aggregations,
/// keywords, label names (in `{...}`, `by (...)`, `on (...)`, ...), strings, durations or
/// Grafana variables (`$topic`, `$__rate_interval`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    let s: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |i: &mut usize| {
        let quote = s[*i];
        *i += 1;
        while *i < s.len() && s[*i] != quote {
            if s[*i] == '\\' && quote != '`' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    // Skips from an opening bracket to its closing one, strings inside included.
    let skip_group = |i: &mut usize, close: char| {
        *i += 1;
        while *i < s.len() && s[*i] != close {
            if matches!(s[*i], '"' | '\'' | '`') {
                skip_string(i);
            } else {
                *i += 1;
            }
        }
        *i += 1;
    };
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let next_non_space = |mut j: usize| {
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let word_at = |j: usize| {
        let end = (j..s.len()).find(|&k| !ident(s[k])).unwrap_or(s.len());
        (end > j).then(|| s[j..end].iter().collect::<String>().to_ascii_lowercase())
    };
    while i < s.len() {
        let c = s[i];
        match c {
            '"' | '\'' | '`' => skip_string(&mut i),
            '{' => skip_group(&mut i, '}'),
            '[' => skip_group(&mut i, ']'),
            '#' => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '$' => {
                i += 1;
                if i < s.len() && s[i] == '{' {
                    skip_group(&mut i, '}');
                }
                while i < s.len() && ident(s[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < s.len() && (ident(s[i]) || s[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < s.len() && ident(s[i]) {
                    i += 1;
                }
                let word: String = s[start..i].iter().collect();
                let j = next_non_space(i);
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if j < s.len() && s[j] == '(' {
                        i = j;
                        skip_group(&mut i, ')');
                    }
                } else if KEYWORDS.contains(&lower.as_str())
                    || (j < s.len() && s[j] == '(')
                    || word_at(j).is_some_and(|w| w == "by" || w == "without")
                {
                    // A keyword, a function, or an aggregation (`sum by (l) (...)`).
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_promql_reader_finds_metric_names_and_only_those() {
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(
        metric_names(
            r#"sum by (topic) (rate(kafka_messages_consumed_total{topic=~"$topic",x="a}b"}[$__rate_interval]))"#
        ),
        set(&["kafka_messages_consumed_total"])
    );
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le, topic) (rate(kafka_message_processing_duration_seconds_bucket[5m])))"
        ),
        set(&["kafka_message_processing_duration_seconds_bucket"])
    );
    assert_eq!(
        metric_names(
            "sum by (g, t) (deriv(lag[10m])) > 0\nand on (g, t)\nsum(lag) by (g, t) > 1e3 # comment kafka_x"
        ),
        set(&["lag"])
    );
    assert_eq!(
        metric_names("a / ignoring (x) group_left (y) b offset 5m unless c == bool 0"),
        set(&["a", "b", "c"])
    );
    assert_eq!(metric_names(r#"up{job="gregor-apps"} == 0"#), set(&["up"]));
    // A misspelt name is a name: the comparison with what gregor exports catches it.
    assert_eq!(
        metric_names("rate(kafka_message_retry_total[1m])"),
        set(&["kafka_message_retry_total"])
    );
}

/// Every PromQL expression of the dashboard: `(where, expr)`, targets and template variables
/// (for `label_values(selector, label)`, the selector).
fn dashboard_exprs(dash: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_owned();
            out.push((format!("panel {} {:?}", p["id"], p["title"]), expr));
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .unwrap_or_default();
        let selector = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .map_or(q, |(sel, _label)| sel);
        out.push((format!("variable {}", v["name"]), selector.to_owned()));
    }
    out
}

/// Every panel, rows' nested panels included.
fn panels(dash: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn alert_exprs() -> Vec<(String, String)> {
    let doc = yaml(&deployments().join("prometheus/alerts.yml"));
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("expr");
            assert!(
                rule["labels"]["severity"].as_str().is_some(),
                "{name}: severity label"
            );
            assert!(
                rule["annotations"]["summary"].as_str().is_some()
                    && rule["annotations"]["description"].as_str().is_some(),
                "{name}: summary and description"
            );
            out.push((format!("alert {name}"), expr.to_owned()));
        }
    }
    assert!(!out.is_empty());
    out
}

#[test]
fn the_dashboard_is_well_formed_and_uses_the_provisioned_datasource() {
    let dash = dashboard();
    let uid = provisioned_uid();
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dash["schemaVersion"].as_u64().is_some());

    let all = panels(&dash);
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, [u64; 4])> = Vec::new();
    for p in &all {
        let id = p["id"].as_u64().expect("numeric panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("panel {id}: gridPos.{k}"))
        });
        assert!(
            (1..=24).contains(&w) && x + w <= 24 && h >= 1,
            "panel {id}: gridPos {g} leaves the 24-column grid"
        );
        for (other, [ox, oy, ow, oh]) in &boxes {
            let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
            assert!(apart, "panels {id} and {other} overlap");
        }
        boxes.push((id, [x, y, w, h]));

        if p["type"] == "row" {
            continue;
        }
        assert!(
            p["title"].as_str().is_some_and(|t| !t.is_empty()),
            "panel {id}: title"
        );
        assert!(
            p["description"].as_str().is_some_and(|t| !t.is_empty()),
            "panel {id}: a description (docs/operations.md repeats them)"
        );
        assert_eq!(p["datasource"]["uid"], uid.as_str(), "panel {id}");
        assert_eq!(p["datasource"]["type"], "prometheus", "panel {id}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {id}: no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "panel {id}: refId twice"
            );
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"]["uid"], uid.as_str(), "panel {id}");
            }
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if !v["datasource"].is_null() {
            assert_eq!(
                v["datasource"]["uid"],
                uid.as_str(),
                "variable {}",
                v["name"]
            );
        }
    }
    for (what, expr) in dashboard_exprs(&dash) {
        assert!(
            !metric_names(&expr).is_empty(),
            "{what}: no metric in {expr:?}"
        );
    }

    // The panels docs/operations.md describes.
    let exprs: Vec<String> = dashboard_exprs(&dash).into_iter().map(|(_, e)| e).collect();
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("kafka_consumer_lag") && e.contains("partition)")),
        "lag per partition"
    );
    for q in ["0.50", "0.95", "0.99"] {
        assert!(
            exprs
                .iter()
                .any(|e| e.starts_with(&format!("histogram_quantile({q},"))
                    && e.contains("kafka_message_processing_duration_seconds_bucket")),
            "p{} of the processing duration",
            &q[2..]
        );
    }
}

/// Scrapes `/metrics` over HTTP: the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    body.to_owned()
}

/// Sum of the samples of `metric` whose labels contain every `want` pair.
fn sample_sum(text: &str, metric: &str, want: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| want.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What a scrape holds: sample names, and family name -> type.
fn exposition(text: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut samples = BTreeSet::new();
    let mut families = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            families.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_owned());
        }
    }
    (samples, families)
}

/// The sample names of a family in the text exposition.
fn family_samples(name: &str, kind: &str) -> Vec<String> {
    match kind {
        "counter" => vec![format!("{name}_total")],
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{name}{s}"))
            .collect(),
        _ => vec![name.to_owned()],
    }
}

fn order_event(i: usize, fail_times: u32) -> Event {
    let price = Money::from_cents(1299).unwrap();
    let order = OrderEvent {
        order_id: format!("o-{i}"),
        user_id: format!("u-{i}"),
        status: OrderStatus::Created,
        amount: price,
        items: vec![Item {
            product_id: "p-1".into(),
            quantity: 1,
            price,
        }],
        created_at: gregor::event::time::now(),
    };
    let event = order.to_event("dashboard-test").unwrap();
    if fail_times > 0 {
        event.with_metadata("fail_times", fail_times.to_string())
    } else {
        event
    }
}

fn record(topic: &str, event: &Event) -> ProducerRecord {
    let mut r = ProducerRecord::new(topic, event.to_json().unwrap().into_bytes()).key("u-1");
    for h in event.headers(Some(1)) {
        r = r.header(h.key, h.value.unwrap_or_default());
    }
    r
}

/// Runs a Worker with order-consumer's stack (metrics, tracing, dead-letter with a counting
/// publisher, retry, timeout) over one processed, one retried and one poison record, and
/// returns its `/metrics` text once every family has its samples.
async fn metrics_of_a_running_worker() -> String {
    let kafka = Kafka::shared().await.expect("local Kafka");
    let topic = unique_topic("dash-orders");
    let dlq = format!("{topic}.dlq");
    create_topic(kafka.bootstrap(), &topic, 1, 1).await.unwrap();
    create_topic(kafka.bootstrap(), &dlq, 1, 1).await.unwrap();
    let group = unique_topic("dash-group");
    let config = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .unwrap()
        .set("group.id", group.as_str())
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap();
    let producer = Arc::new(Producer::connect(&config).await.unwrap());
    producer
        .send(record(&topic, &order_event(1, 0)))
        .await
        .unwrap();
    producer
        .send(record(&topic, &order_event(2, 1)))
        .await
        .unwrap();
    let poison = ProducerRecord::new(topic.as_str(), b"{\"not\": json".to_vec())
        .key("u-1")
        .header("event-type", "order.created");
    producer.send(poison).await.unwrap();

    let created = handler_fn(|m: Message| async move {
        let event = m.event()?;
        let fail_times: u32 = event
            .metadata
            .get("fail_times")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if m.attempt() <= fail_times {
            return Err(Error::retriable("inventory service unavailable"));
        }
        OrderEvent::from_event(event).map_err(|e| Error::validation(e.to_string()))?;
        Ok(())
    });
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let handler = Stack::new(
        Router::new()
            .route("order.created", created)
            .fallback(Fallback::DeadLetter),
    )
    .metrics(metrics.layer())
    .tracing()
    .dead_letter(DeadLetterLayer::new(Arc::new(
        gregor::ProducerPublisher::new(Arc::clone(&producer)).metrics(metrics.clone()),
    )))
    .retry(
        RetryLayer::new()
            .max_attempts(3)
            .backoff(Duration::from_millis(10), 2.0),
    )
    .timeout(Duration::from_secs(10))
    .build();
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry))
        .await
        .unwrap();
    let worker = Worker::builder(config)
        .topics([topic.clone()])
        .codecs(Arc::new(
            CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        ))
        .handler(handler)
        .metrics(metrics)
        .commit_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let stop = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());

    let t = format!("topic=\"{topic}\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(server.local_addr()).await;
        let done = sample_sum(
            &text,
            "kafka_messages_handled_total",
            &[&t, "outcome=\"processed\""],
        ) == 2.0
            && sample_sum(&text, "kafka_messages_dead_lettered_total", &[&t]) == 1.0
            && sample_sum(&text, "kafka_consumer_lag", &[&t]) == 0.0
            && text.contains(&format!("kafka_consumer_lag{{{t}"));
        if done {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not finish in 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.trigger();
    let stats = run.await.unwrap().unwrap();
    server.shutdown().await;
    assert_eq!(
        (stats.processed, stats.dead_lettered, stats.retries),
        (2, 1, 1)
    );
    // The retry and the dead letter really happened: the series are not just registered.
    assert_eq!(sample_sum(&text, "kafka_message_retries_total", &[&t]), 1.0);
    assert_eq!(
        sample_sum(
            &text,
            "kafka_messages_produced_total",
            &[&format!("topic=\"{dlq}\""), "status=\"success\""]
        ),
        1.0
    );
    assert_eq!(
        sample_sum(
            &text,
            "kafka_message_processing_duration_seconds_count",
            &[&t]
        ),
        3.0
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_use_only_metrics_a_running_worker_exports() {
    let text = metrics_of_a_running_worker().await;
    let (samples, families) = exposition(&text);
    assert!(
        families.len() >= 7,
        "the seven gregor families: {families:?}"
    );
    let exported = |name: &str| samples.contains(name) || PROMETHEUS_OWN.contains(&name);

    let dash = dashboard();
    let mut on_dashboard = BTreeSet::new();
    for (what, expr) in dashboard_exprs(&dash).into_iter().chain(alert_exprs()) {
        for name in metric_names(&expr) {
            assert!(
                exported(&name),
                "{what} uses {name}, which gregor does not export (it exports {samples:?})"
            );
            if what.starts_with("panel") {
                on_dashboard.insert(name);
            }
        }
    }
    // The other way round: every family gregor exports has a panel.
    for (family, kind) in &families {
        let names = family_samples(family, kind);
        for n in &names {
            assert!(samples.contains(n), "{family} ({kind}) exports {n}");
        }
        assert!(
            names.iter().any(|n| on_dashboard.contains(n)),
            "{family} is exported but no dashboard panel shows it"
        );
    }
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_null(), "compose has no {name} service");
    s
}

/// A compose service's bind mounts: target -> source path in the repository.
fn mounts(svc: &Yaml) -> BTreeMap<String, PathBuf> {
    svc["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .map(|v| {
            let v = v.as_str().expect("short volume syntax");
            let mut parts = v.split(':');
            let (src, dst) = (parts.next().unwrap(), parts.next().expect("source:target"));
            let src = deployments().join(src.trim_start_matches("./"));
            assert!(src.exists(), "{v}: {} does not exist", src.display());
            (dst.to_owned(), src)
        })
        .collect()
}

/// The default of an app's `--metrics-port`, read from its source.
fn default_metrics_port(app: &str) -> u16 {
    let path = gregor_testkit::workspace_root().join(format!("apps/{app}/src/main.rs"));
    let src = read(&path);
    let lines: Vec<&str> = src.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "metrics_port: u16,")
        .unwrap_or_else(|| panic!("{app} has no metrics_port flag"));
    lines[..at]
        .iter()
        .rev()
        .take(3)
        .find_map(|l| l.split("default_value_t = ").nth(1))
        .and_then(|r| r.trim_end_matches([')', ']']).parse().ok())
        .unwrap_or_else(|| panic!("{app}: no default for --metrics-port"))
}

#[test]
fn compose_runs_grafana_with_the_provisioning_and_prometheus_scrapes_the_apps() {
    let compose = yaml(&deployments().join("docker-compose.yml"));
    let grafana = service(&compose, "grafana");

    // The image is pinned, and is the version the schema check validates against.
    let image = grafana["image"].as_str().unwrap();
    let tag = image
        .strip_prefix("grafana/grafana:")
        .expect("grafana/grafana");
    assert!(
        tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "pinned: {image}"
    );
    let check: Json = serde_json::from_str(&read(
        &deployments().join("grafana/schema-check/package.json"),
    ))
    .unwrap();
    assert_eq!(
        check["devDependencies"]["@grafana/schema"], tag,
        "schema-check validates against the schema of the image compose runs"
    );
    for port in grafana["ports"].as_sequence().unwrap() {
        assert!(
            port.as_str().unwrap().starts_with("127.0.0.1:"),
            "grafana listens on the loopback only: {port:?}"
        );
    }

    // Provisioning: the datasource and dashboard providers, and the dashboards they load.
    let m = mounts(grafana);
    for kind in ["datasources", "dashboards"] {
        assert_eq!(
            m.get(&format!("/etc/grafana/provisioning/{kind}")),
            Some(&deployments().join(format!("grafana/provisioning/{kind}"))),
            "grafana mounts the {kind} provisioning"
        );
    }
    let providers = yaml(&deployments().join("grafana/provisioning/dashboards/gregor.yml"));
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let src = m.get(path).expect("the provider's path is mounted");
    assert!(
        src.join("gregor.json").exists(),
        "{} holds gregor.json",
        src.display()
    );
    let home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .unwrap();
    assert_eq!(home, format!("{path}/gregor.json"));

    // The datasource reaches the compose Prometheus.
    let ds_dir = deployments().join("grafana/provisioning/datasources");
    let ds = yaml(
        &std::fs::read_dir(&ds_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    );
    let url = ds["datasources"][0]["url"].as_str().unwrap();
    let hostport = url.strip_prefix("http://").expect("http");
    let (host, port) = hostport.split_once(':').expect("host:port");
    let prometheus = service(&compose, host);
    assert!(
        prometheus["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().ends_with(&format!(":{port}"))),
        "the {host} service serves {port}"
    );

    // Prometheus: its config and every rule file are mounted; it scrapes both apps.
    let pm = mounts(prometheus);
    let config_path = pm
        .get("/etc/prometheus/prometheus.yml")
        .expect("prometheus.yml mounted");
    let config = yaml(config_path);
    for rule_file in config["rule_files"].as_sequence().expect("rule_files") {
        let target = format!("/etc/prometheus/{}", rule_file.as_str().unwrap());
        assert!(pm.contains_key(&target), "{target} is mounted");
    }
    let targets: Vec<String> = config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|job| job["static_configs"].as_sequence().into_iter().flatten())
        .flat_map(|sc| sc["targets"].as_sequence().into_iter().flatten())
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    for app in ["order-consumer", "order-producer"] {
        let port = default_metrics_port(app);
        assert!(
            targets.iter().any(|t| t.ends_with(&format!(":{port}"))),
            "prometheus.yml scrapes {app} on its default --metrics-port {port}: {targets:?}"
        );
    }
}
