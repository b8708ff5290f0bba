//! deployments/ cannot run here (no Docker engine), so this test keeps it honest: the compose
//! brokers, the documented server.properties and the local cluster gregor-testkit starts must
//! name the same listeners, replication and internal-topic settings, and compose must create
//! exactly the topics of deployments/topics.yaml.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

/// Settings that differ per node or per machine by nature.
const PER_NODE: &[&str] = &[
    "node.id",
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "log.dirs",
    "listener.security.protocol.map",
];

fn root() -> std::path::PathBuf {
    gregor_testkit::workspace_root()
}

fn local() -> BTreeMap<String, String> {
    gregor_testkit::reference_properties(3)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("deployments/docker-compose.yml")).unwrap();
    let mut doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    doc
}

/// The apache/kafka image turns `KAFKA_FOO_BAR` into `foo.bar` (`__` is `_`, `___` is `-`).
fn image_env_to_properties(env: &serde_yaml_ng::Mapping) -> BTreeMap<String, String> {
    env.iter()
        .filter_map(|(k, v)| {
            let k = k.as_str()?;
            let name = k.strip_prefix("KAFKA_")?;
            if name == "HEAP_OPTS" || name == "OPTS" || name == "JVM_PERFORMANCE_OPTS" {
                return None;
            }
            let prop = name
                .replace("___", "\u{1}")
                .replace("__", "\u{2}")
                .replace('_', ".")
                .replace('\u{1}', "-")
                .replace('\u{2}', "_")
                .to_lowercase();
            Some((prop, v.as_str()?.to_owned()))
        })
        .collect()
}

fn protocol_map(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|e| e.split_once(':'))
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .collect()
}

fn listener_names(s: &str) -> Vec<String> {
    let mut names: Vec<String> = s
        .split(',')
        .filter_map(|l| l.split_once("://"))
        .map(|(n, _)| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// Same values for every shared key, same listener protocols, same voter count.
fn assert_matches_local(what: &str, props: &BTreeMap<String, String>) {
    let local = local();
    for (key, want) in &local {
        if PER_NODE.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            props.get(key),
            Some(want),
            "{what}: {key} differs from the local cluster's"
        );
    }
    for key in props.keys() {
        assert!(
            local.contains_key(key),
            "{what} sets {key}, which the local cluster does not: add it to gregor-testkit's node properties or drop it"
        );
    }
    // Every local listener exists with the same protocol (compose may add a host listener).
    let local_map = protocol_map(&local["listener.security.protocol.map"]);
    let their_map = protocol_map(&props["listener.security.protocol.map"]);
    for (name, proto) in &local_map {
        assert_eq!(their_map.get(name), Some(proto), "{what}: listener {name}");
    }
    for name in listener_names(&props["listeners"]) {
        assert!(
            their_map.contains_key(&name),
            "{what}: listener {name} has no protocol"
        );
    }
    let local_names = listener_names(&local["listeners"]);
    let names = listener_names(&props["listeners"]);
    for name in &local_names {
        assert!(
            names.contains(name),
            "{what}: no {name} listener in {names:?}"
        );
    }
    let voters = props["controller.quorum.voters"].split(',').count();
    assert_eq!(voters, 3, "{what}: three controller voters");
}

#[test]
fn compose_brokers_match_the_local_cluster() {
    let doc = compose();
    let services = doc["services"].as_mapping().unwrap();
    let brokers: Vec<(&str, BTreeMap<String, String>)> = services
        .iter()
        .filter_map(|(name, svc)| {
            let name = name.as_str()?;
            let env = svc.get("environment")?.as_mapping()?;
            env.contains_key("KAFKA_NODE_ID")
                .then(|| (name, image_env_to_properties(env)))
        })
        .collect();
    assert_eq!(brokers.len(), 3, "three KRaft brokers in compose");
    let mut ids: Vec<&str> = brokers.iter().map(|(_, p)| p["node.id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1", "2", "3"]);
    for (name, props) in &brokers {
        assert_matches_local(&format!("docker-compose service {name}"), props);
        let image = services[*name]["image"].as_str().unwrap();
        assert_eq!(
            image,
            format!("apache/kafka:{}", gregor_testkit::kafka_version()),
            "{name} runs the Kafka version the local setup pins"
        );
    }
    for required in ["schema-registry", "kafka-ui", "prometheus"] {
        assert!(services.contains_key(required), "compose has {required}");
    }
}

#[test]
fn documented_server_properties_match_the_local_cluster() {
    let text = std::fs::read_to_string(root().join("deployments/kafka/server.properties")).unwrap();
    let mut props = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        props.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    assert_matches_local("deployments/kafka/server.properties", &props);
    // Every setting is preceded by a comment block (settings may share one).
    let blocks: Vec<&str> = text.split("\n\n").collect();
    for block in blocks {
        let first = block.trim_start().lines().next().unwrap_or("");
        assert!(
            first.is_empty() || first.starts_with('#'),
            "undocumented block starting {first:?}"
        );
    }
}

#[test]
fn compose_creates_exactly_the_manifest_topics() {
    #[derive(serde::Deserialize)]
    struct Manifest {
        topics: Vec<Topic>,
    }
    #[derive(serde::Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Topic {
        name: String,
        partitions: i32,
        replication: i16,
    }
    let text = std::fs::read_to_string(root().join("deployments/topics.yaml")).unwrap();
    let mut manifest: Manifest = serde_yaml_ng::from_str(&text).unwrap();
    manifest.topics.sort();

    let doc = compose();
    let script = doc["services"]["kafka-init"]["command"][0]
        .as_str()
        .unwrap();
    let mut created: Vec<Topic> = script
        .lines()
        .filter(|l| l.contains("kafka-topics.sh") && l.contains("--create"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let arg = |flag: &str| {
                let i = words.iter().position(|w| *w == flag).unwrap();
                words[i + 1]
            };
            Topic {
                name: arg("--topic").to_owned(),
                partitions: arg("--partitions").parse().unwrap(),
                replication: arg("--replication-factor").parse().unwrap(),
            }
        })
        .collect();
    created.sort();
    assert!(!created.is_empty());
    assert_eq!(created, manifest.topics);
}
