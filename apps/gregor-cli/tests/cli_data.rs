//! The `gregor` binary's data commands against the real broker and registry: produce a file and
//! consume it back identical; Avro through the registry; group lag equal to Kafka's own
//! consumer-groups tool, reset-offsets dry run and real run; dead-letter replay of exactly the
//! selected records, once; bad input as one line with exit code 2.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gregor_testkit::tools::{self, class};
use gregor_testkit::{Kafka, SchemaRegistry, unique_topic};
use serde_json::{Value, json};

fn gregor(bootstrap: &str, args: &[&str]) -> Output {
    gregor_stdin(bootstrap, args, None)
}

fn gregor_stdin(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gregor");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().expect("gregor output")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = gregor_testkit::state_root().join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn topic(kafka: &Kafka, prefix: &str, partitions: i32) -> String {
    let t = unique_topic(prefix);
    gregor_testkit::create_topic(kafka.bootstrap(), &t, partitions, 1)
        .await
        .unwrap();
    t
}

/// The fields produce reads back: key, value, headers.
fn essence(v: &Value) -> Value {
    json!({ "key": v["key"], "value": v["value"], "headers": v["headers"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produced_file_is_consumed_back_identical() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let t = topic(&kafka, "cli-rt", 3).await;
    let mut lines = Vec::new();
    for i in 0..60 {
        let key = if i % 10 == 9 {
            Value::Null
        } else {
            json!(format!("user-{}", i % 7))
        };
        lines.push(json!({
            "key": key,
            "value": {"order_id": i, "note": format!("tab\there, quote \" and ünïcode {i}")},
            // Names in order, each once: the producer sends headers through rskafka, whose
            // headers are a map (see `gregor produce --help`).
            "headers": [["event-type", if i % 2 == 0 { "order.created" } else { "order.cancelled" }], ["trace", format!("t-{i}")], ["version", "1"]],
        }));
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = temp_file(&format!("{t}.jsonl"), &text);
    let sent = ok(
        &gregor(
            kafka.bootstrap(),
            &[
                "--json",
                "produce",
                &t,
                "--file",
                file.to_str().unwrap(),
                "--format",
                "json",
                "--codec",
                "json",
            ],
        ),
        "produce",
    );
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["sent"], 60);
    let per: u64 = sent["partitions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per, 60);

    let got = json_lines(&ok(
        &gregor(
            kafka.bootstrap(),
            &["--json", "consume", &t, "--codec", "json"],
        ),
        "consume",
    ));
    assert_eq!(got.len(), 60);
    // Same multiset of records; per key, the order of the file.
    let mut want_by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in &lines {
        want_by_key
            .entry(l["key"].to_string())
            .or_default()
            .push(essence(l));
    }
    let mut got_by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for g in &got {
        got_by_key
            .entry(g["key"].to_string())
            .or_default()
            .push(essence(g));
    }
    for v in want_by_key.values_mut().chain(got_by_key.values_mut()) {
        if v.first().is_some_and(|x| x["key"].is_null()) {
            v.sort_by_key(|x| x["value"]["order_id"].as_i64());
        }
    }
    assert_eq!(got_by_key, want_by_key);

    // kv lines from stdin, filters by key and event type, --max.
    ok(
        &gregor_stdin(
            kafka.bootstrap(),
            &["produce", &t, "-H", "event-type=note"],
            Some("k1\tplain text\nk2\tsecond\n"),
        ),
        "produce kv",
    );
    let only = json_lines(&ok(
        &gregor(kafka.bootstrap(), &["--json", "consume", &t, "--key", "k2"]),
        "consume --key",
    ));
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["value"], "second");
    let typed = json_lines(&ok(
        &gregor(
            kafka.bootstrap(),
            &["--json", "consume", &t, "--event-type", "order.cancelled"],
        ),
        "consume --event-type",
    ));
    assert_eq!(typed.len(), 30);
    let capped = json_lines(&ok(
        &gregor(kafka.bootstrap(), &["--json", "consume", &t, "--max", "7"]),
        "consume --max",
    ));
    assert_eq!(capped.len(), 7);
    // Pretty output names where each record is.
    let pretty = ok(
        &gregor(kafka.bootstrap(), &["consume", &t, "--key", "k1"]),
        "pretty",
    );
    assert!(pretty.contains(&format!("{t}/")), "{pretty}");
    assert!(pretty.contains("plain text"), "{pretty}");
    assert!(
        !pretty.contains('\x1b'),
        "no colours off a terminal: {pretty}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_goes_through_the_registry_both_ways() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let registry = SchemaRegistry::shared().await.expect("a real registry");
    let t = topic(&kafka, "cli-avro", 1).await;
    let schema = temp_file(
        &format!("{t}.avsc"),
        r#"{"type":"record","name":"Note","namespace":"dev.gregor.cli","fields":[
            {"name":"id","type":"long"},{"name":"text","type":"string"},
            {"name":"tag","type":["null","string"],"default":null}]}"#,
    );
    let input = "a\t{\"id\":1,\"text\":\"one\",\"tag\":null}\nb\t{\"id\":2,\"text\":\"two\",\"tag\":\"x\"}\n";
    let reg = ["--registry", registry.url()];
    let mut args = vec![
        "produce",
        t.as_str(),
        "--codec",
        "avro",
        "--schema",
        schema.to_str().unwrap(),
    ];
    args.extend(reg);
    ok(
        &gregor_stdin(kafka.bootstrap(), &args, Some(input)),
        "produce avro",
    );
    for codec in ["avro", "auto"] {
        let mut args = vec!["--json", "consume", t.as_str(), "--codec", codec];
        args.extend(reg);
        let got = json_lines(&ok(&gregor(kafka.bootstrap(), &args), "consume avro"));
        assert_eq!(
            got.iter().map(|g| g["value"].clone()).collect::<Vec<_>>(),
            vec![
                json!({"id": 1, "text": "one", "tag": null}),
                json!({"id": 2, "text": "two", "tag": "x"})
            ],
            "--codec {codec}"
        );
        assert_eq!(got[1]["key"], "b");
    }
    // A value that does not fit the schema is the user's to fix.
    let mut args = vec![
        "produce",
        t.as_str(),
        "--codec",
        "avro",
        "--schema",
        schema.to_str().unwrap(),
    ];
    args.extend(reg);
    let o = gregor_stdin(kafka.bootstrap(), &args, Some("c\t{\"id\":\"x\"}\n"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("input line 1") && err.contains("Avro schema"),
        "{err}"
    );
}

/// partition -> (current offset, log end offset, lag) from Kafka's consumer-groups tool.
async fn kafka_tool_lag(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i64, Value> {
    let out = tools::run(
        class::CONSUMER_GROUPS,
        &[
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ],
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    out.stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |s: &str| s.parse::<i64>().map_or(Value::Null, |v| json!(v));
            (f.len() >= 6 && f[1] == topic)
                .then(|| (f[2].parse().unwrap(), json!([n(f[3]), n(f[4]), n(f[5])])))
        })
        .collect()
}

fn our_lag(v: &Value) -> BTreeMap<i64, Value> {
    v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                json!([p["committed"], p["end_offset"], p["lag"]]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_matches_kafkas_tool_and_reset_offsets_moves_the_group() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let b = kafka.bootstrap();
    let t = topic(&kafka, "cli-grp", 2).await;
    let input: String = (0..40).map(|i| format!("k{i}\tv{i}\n")).collect();
    ok(&gregor_stdin(b, &["produce", &t], Some(&input)), "produce");
    let group = unique_topic("cli-group");
    // Read (and commit) 15 of the 40 records in the group.
    let read = json_lines(&ok(
        &gregor(
            b,
            &["--json", "consume", &t, "--group", &group, "--max", "15"],
        ),
        "consume in group",
    ));
    assert_eq!(read.len(), 15);

    let lag: Value =
        serde_json::from_str(&ok(&gregor(b, &["--json", "groups", "lag", &group]), "lag")).unwrap();
    let ours = our_lag(&lag);
    assert_eq!(ours, kafka_tool_lag(b, &group, &t).await);
    // Committed offsets sum to the 15 records read; lag counts committed partitions only.
    let committed: i64 = ours.values().filter_map(|v| v[0].as_i64()).sum();
    assert_eq!(committed, 15, "{lag}");
    let total = lag["total_lag"].as_i64().unwrap();
    assert_eq!(
        total,
        ours.values().filter_map(|v| v[2].as_i64()).sum::<i64>()
    );
    assert!(total > 0, "{lag}");
    let below = (total - 1).to_string();
    let o = gregor(b, &["groups", "lag", &group, "--alert-lag", &below]);
    assert_eq!(o.status.code(), Some(3), "lag {total} > {below}");
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("above --alert-lag {below}")));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("total lag: {total}")));
    ok(
        &gregor(
            b,
            &["groups", "lag", &group, "--alert-lag", &total.to_string()],
        ),
        "lag at the limit",
    );
    let listed = ok(&gregor(b, &["groups", "list"]), "list");
    assert!(listed.contains(&group), "{listed}");

    // From here on our lag (equal to the tool's, as checked above) saves a JVM start per check.
    let lag_now = || {
        our_lag(
            &serde_json::from_str(&ok(&gregor(b, &["--json", "groups", "lag", &group]), "lag"))
                .unwrap(),
        )
    };
    // Dry run: before/after shown, nothing moves.
    let before = ours;
    let dry: Value = serde_json::from_str(&ok(
        &gregor(
            b,
            &[
                "--json",
                "groups",
                "reset-offsets",
                &group,
                "--topic",
                &t,
                "--to-earliest",
                "--dry-run",
            ],
        ),
        "dry run",
    ))
    .unwrap();
    assert_eq!(dry["dry_run"], true);
    for p in dry["partitions"].as_array().unwrap() {
        assert_eq!(p["after"], 0);
        assert_eq!(
            p["before"],
            before
                .get(&p["partition"].as_i64().unwrap())
                .map_or(Value::Null, |v| v[0].clone()),
            "before = the committed offset"
        );
    }
    assert_eq!(lag_now(), before, "dry run changed nothing");

    // The real run moves the group, as Kafka's tool sees it.
    ok(
        &gregor(
            b,
            &[
                "groups",
                "reset-offsets",
                &group,
                "--topic",
                &t,
                "--to-earliest",
            ],
        ),
        "reset",
    );
    let after = kafka_tool_lag(b, &group, &t).await;
    assert_eq!(after.len(), 2);
    assert!(after.values().all(|v| v[0] == 0), "{after:?}");
    ok(
        &gregor(
            b,
            &[
                "groups",
                "reset-offsets",
                &group,
                "--all-topics",
                "--to-offset",
                "3",
            ],
        ),
        "reset to offset",
    );
    let moved = lag_now();
    assert_eq!(moved.len(), 2);
    assert!(moved.values().all(|v| v[0] == 3), "{moved:?}");

    // A group with a member is refused with exit code 4.
    let mut member = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["--bootstrap-server", b, "tail", &t, "--group", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let d: Value = serde_json::from_str(&ok(
            &gregor(b, &["--json", "groups", "describe", &group]),
            "describe",
        ))
        .unwrap();
        if d[0]["members"].as_array().is_some_and(|m| !m.is_empty()) {
            assert_eq!(
                d[0]["members"][0]["assignment"].as_array().unwrap().len(),
                2
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no member: {d}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let o = gregor(
        b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--all-topics",
            "--to-latest",
        ],
    );
    let _ = member.kill();
    let _ = member.wait();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("active member"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_moves_exactly_the_selected_records_once() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let b = kafka.bootstrap();
    let original = topic(&kafka, "cli-orig", 2).await;
    let dlq = format!("{original}.dlq");
    gregor_testkit::create_topic(b, &dlq, 1, 1).await.unwrap();
    // Offsets 0..8 of the DLQ; fatal at even offsets.
    let lines: String = (0..8)
        .map(|i| {
            let class = if i % 2 == 0 { "fatal" } else { "retriable" };
            format!(
                "{}\n",
                json!({
                    "key": format!("order-{i}"),
                    "value": {"order_id": i},
                    "headers": [
                        ["event-type", "order.created"],
                        ["error", format!("handler failed on {i}")],
                        ["error_class", class],
                        ["retry_count", "3"],
                        ["original_topic", original],
                        ["original_partition", "0"],
                        ["original_offset", i.to_string()],
                        ["original_timestamp", "2026-11-28T10:00:00Z"],
                        ["consumer_group", "order-processor"],
                    ],
                })
            )
        })
        .collect();
    ok(
        &gregor_stdin(
            b,
            &["produce", &dlq, "--format", "json", "--codec", "json"],
            Some(&lines),
        ),
        "produce dlq",
    );

    let inspected = json_lines(&ok(
        &gregor(
            b,
            &["--json", "dlq", "inspect", &dlq, "--error-class", "fatal"],
        ),
        "inspect",
    ));
    assert_eq!(inspected.len(), 4);
    assert_eq!(inspected[1]["dead_letter"]["error"], "handler failed on 2");
    assert_eq!(
        inspected[1]["dead_letter"]["original_topic"],
        original.as_str()
    );
    assert!(inspected.iter().all(|r| r["replayed"] == false));

    // Fatal ones among offsets 1..=6: 2, 4, 6.
    let select = [
        "--error-class",
        "fatal",
        "--from-offset",
        "1",
        "--to-offset",
        "6",
        "--rate",
        "50",
    ];
    let mut args = vec!["--json", "dlq", "replay", dlq.as_str(), "--dry-run"];
    args.extend(select);
    let dry: Value = serde_json::from_str(&ok(&gregor(b, &args), "dry run")).unwrap();
    assert_eq!(dry["selected"], 3);
    let nothing = json_lines(&ok(&gregor(b, &["--json", "consume", &original]), "empty"));
    assert!(nothing.is_empty(), "dry run sent nothing");

    let mut args = vec!["--json", "dlq", "replay", dlq.as_str()];
    args.extend(select);
    let first: Value = serde_json::from_str(&ok(&gregor(b, &args), "replay")).unwrap();
    assert_eq!(first["replayed"][&original], 3, "{first}");
    let moved = json_lines(&ok(
        &gregor(b, &["--json", "consume", &original]),
        "consume original",
    ));
    let mut ids: Vec<i64> = moved
        .iter()
        .map(|r| r["value"]["order_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 4, 6]);
    for r in &moved {
        let names: Vec<&str> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h[0].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"event-type"),
            "original headers kept: {names:?}"
        );
        assert!(names.contains(&"replayed_from"), "{names:?}");
        assert!(
            !names.contains(&"error_class"),
            "dead-letter headers removed: {names:?}"
        );
        assert_eq!(r["key"], format!("order-{}", r["value"]["order_id"]));
    }

    // Again: nothing moves.
    let second: Value = serde_json::from_str(&ok(&gregor(b, &args), "second replay")).unwrap();
    assert_eq!(second["replayed"], json!({}), "{second}");
    assert_eq!(second["already_replayed"], 3);
    let again = json_lines(&ok(
        &gregor(b, &["--json", "consume", &original]),
        "consume again",
    ));
    assert_eq!(again.len(), 3);
    let inspected = json_lines(&ok(
        &gregor(b, &["--json", "dlq", "inspect", &dlq]),
        "inspect",
    ));
    assert_eq!(
        inspected.iter().filter(|r| r["replayed"] == true).count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_line_and_exit_2() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let t = topic(&kafka, "cli-bad", 1).await;
    let bad_json = temp_file(
        &format!("{t}-bad.jsonl"),
        "{\"value\":1}\n{\"key\":\"k\"}\n",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["produce", &t, "--codec", "auto"], "--codec auto"),
        (
            vec![
                "produce",
                &t,
                "--format",
                "json",
                "--file",
                bad_json.to_str().unwrap(),
            ],
            "input line 2",
        ),
        (
            vec!["produce", &t, "--file", "/no/such/input"],
            "/no/such/input",
        ),
        (vec!["produce", &t, "--codec", "avro"], "--schema"),
        (vec!["consume", &t, "--from", "yesterday"], "RFC 3339"),
        (vec!["consume", "no.such.topic-x"], "does not exist"),
        (vec!["consume", &t, "--partition", "7"], "no partition 7"),
        (
            vec!["consume", &t, "--group", "g", "--from", "1700000000000"],
            "reset-offsets",
        ),
        (
            vec!["groups", "reset-offsets", "g", "--all-topics"],
            "--to-",
        ),
        (
            vec!["groups", "reset-offsets", "g", "--to-latest"],
            "--topic",
        ),
        (vec!["groups", "lag"], "<GROUP>"),
        (vec!["dlq", "replay", &t, "--rate", "0"], "--rate"),
        (
            vec![
                "dlq",
                "inspect",
                &t,
                "--from-offset",
                "5",
                "--to-offset",
                "2",
            ],
            "empty",
        ),
        (vec!["tail", &t, "--offset", "-3"], "--offset"),
    ];
    for (args, needle) in cases {
        let out = gregor(kafka.bootstrap(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(err.contains(needle), "{args:?}: {err} lacks {needle:?}");
    }
    // Exit codes are documented in --help.
    let help = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for code in [
        "0  success",
        "2  usage",
        "3  groups lag",
        "4  groups reset-offsets",
    ] {
        assert!(help.contains(code), "{code} in --help: {help}");
    }
}
