//! The `gregor` binary against the real broker: topics from a manifest, described back, and the
//! one-line errors with exit code 2 for what the user got wrong.

use std::process::{Command, Output};

use gregor_testkit::{Kafka, unique_topic};

fn gregor(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .expect("run gregor")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = gregor_testkit::state_root().join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_topics_are_created_then_described() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let suffix = unique_topic("t").replace('-', "");
    let a = format!("cli.{suffix}.created");
    let b = format!("cli.{suffix}.cancelled");
    let manifest = temp_file(
        &format!("{suffix}.yaml"),
        &format!(
            "topics:\n  - name: {a}\n    partitions: 3\n    replication: 1\n    configs:\n      retention.ms: \"3600000\"\n  - name: {b}\n    partitions: 2\n    replication: 1\n"
        ),
    );
    let out = gregor(
        kafka.bootstrap(),
        &["topics", "create", "--manifest", manifest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = gregor(kafka.bootstrap(), &["--json", "topics", "describe", &a, &b]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let topics = v["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 2);
    assert_eq!(topics[0]["name"], a.as_str());
    assert_eq!(topics[0]["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(topics[0]["configs"]["retention.ms"], "3600000");
    assert_eq!(topics[1]["partitions"].as_array().unwrap().len(), 2);
    for p in topics[0]["partitions"].as_array().unwrap() {
        assert!(p["leader"].is_number(), "{p}");
    }

    // Creating again fails with Kafka's reason, unless told to skip existing topics.
    let out = gregor(
        kafka.bootstrap(),
        &["topics", "create", "--manifest", manifest.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        stderr(&out)
    );
    let out = gregor(
        kafka.bootstrap(),
        &[
            "--json",
            "topics",
            "create",
            "--if-not-exists",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["already_existed"].as_array().unwrap().len(), 2);

    let out = gregor(
        kafka.bootstrap(),
        &["topics", "alter-partitions", &b, "--partitions", "4"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gregor(kafka.bootstrap(), &["--json", "topics", "describe", &b]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["topics"][0]["partitions"].as_array().unwrap().len(), 4);

    let out = gregor(kafka.bootstrap(), &["topics", "delete", &a, &b, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_mistakes_are_one_line_and_exit_2() {
    let kafka = Kafka::shared().await.expect("a real Kafka");
    let bad_yaml = temp_file(
        "bad.yaml",
        "topics:\n  - name: a.b.c\n    partitions: zero\n",
    );
    let unknown_field = temp_file(
        "unknown-field.yaml",
        "topics:\n  - name: a.b.c\n    partitions: 1\n    replication: 1\n    retention: 5\n",
    );
    let no_partitions = temp_file(
        "no-partitions.yaml",
        "topics:\n  - name: a.b.c\n    partitions: 0\n    replication: 1\n",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["topics", "--bogus"], "--bogus"),
        (
            vec!["topics", "create", "--manifest", bad_yaml.to_str().unwrap()],
            "partitions",
        ),
        (
            vec![
                "topics",
                "create",
                "--manifest",
                unknown_field.to_str().unwrap(),
            ],
            "retention",
        ),
        (
            vec![
                "topics",
                "create",
                "--manifest",
                no_partitions.to_str().unwrap(),
            ],
            "at least 1 partition",
        ),
        (
            vec!["topics", "create", "--manifest", "/no/such/file.yaml"],
            "/no/such/file.yaml",
        ),
        (
            vec!["topics", "create", "Orders", "--partitions", "1"],
            "<domain>.<entity>.<event_type>",
        ),
        (vec!["topics", "create", "a.b.c"], "--partitions"),
        (vec!["topics", "delete", "a.b.c"], "--yes"),
        (
            vec!["-X", "client.idd=x", "topics", "list"],
            "did you mean `client.id`",
        ),
        (vec!["plan", "--rate", "-5", "--size", "100"], "--rate"),
    ];
    for (args, needle) in cases {
        let out = gregor(kafka.bootstrap(), &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(err.contains(needle), "{args:?}: {err} lacks {needle:?}");
    }
}

#[test]
fn completions_are_generated() {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("alter-partitions"),
        "bash completion lists subcommands"
    );
}
