//! `gregor topics`: create (from a manifest or flags), list, describe, delete, alter-partitions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::Subcommand;
use gregor_client::{Admin, KafkaCode, NewTopic};
use serde_json::json;

use super::client_config;
use crate::manifest::{self, TopicSpec};
use crate::output::Output;
use crate::{CliResult, Failure, Global};

#[derive(Debug, Subcommand)]
pub(crate) enum Topics {
    /// Create topics from a manifest (deployments/topics.yaml) or from flags.
    Create(Create),
    /// List topics.
    List,
    /// Partitions, leaders, replicas and in-sync replicas of topics, and their configs.
    Describe {
        /// Topics to describe.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Delete topics (asks for --yes).
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
    /// Grow a topic to more partitions (keys move to other partitions: per-key order breaks
    /// across the change).
    AlterPartitions {
        /// Topic.
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: i32,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct Create {
    /// Topic name (with --partitions and --replication), instead of a manifest.
    #[arg(conflicts_with = "manifest")]
    name: Option<String>,
    /// A topic manifest (YAML: topics: [{name, partitions, replication, configs}]).
    #[arg(long, short = 'f', value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Partitions for a topic given by name.
    #[arg(long, requires = "name")]
    partitions: Option<i32>,
    /// Replication factor for a topic given by name.
    #[arg(long, requires = "name")]
    replication: Option<i16>,
    /// Topic config for a topic given by name (retention.ms=86400000); repeatable.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", requires = "name")]
    topic_config: Vec<String>,
    /// Accept names that do not follow the `domain.entity.event_type` convention.
    #[arg(long)]
    allow_legacy_name: bool,
    /// Skip topics that already exist instead of failing.
    #[arg(long)]
    if_not_exists: bool,
    /// Choose the partition count by the rule of thumb max(target MB/s / 10, max consumers)
    /// (needs --target-mbps and --max-consumers).
    #[arg(long, requires_all = ["target_mbps", "max_consumers"], conflicts_with = "partitions")]
    suggest_partitions: bool,
    /// Expected peak throughput in MB/s, for --suggest-partitions.
    #[arg(long)]
    target_mbps: Option<f64>,
    /// Most consumers that will read in parallel, for --suggest-partitions.
    #[arg(long)]
    max_consumers: Option<i32>,
}

/// The rule of thumb: a partition sustains about 10 MB/s, and a group cannot use more consumers
/// than partitions.
pub(crate) fn suggest_partitions(target_mbps: f64, max_consumers: i32) -> i32 {
    let by_throughput = (target_mbps / 10.0).ceil();
    let by_throughput = if by_throughput.is_finite() && by_throughput > 0.0 {
        by_throughput.min(f64::from(i32::MAX)) as i32
    } else {
        1
    };
    by_throughput.max(max_consumers).max(1)
}

pub(crate) async fn run(cmd: Topics, global: &Global, out: &Output) -> CliResult {
    match cmd {
        Topics::Create(c) => create(c, global, out).await,
        Topics::List => {
            let admin = Admin::connect(&client_config(global)?).await?;
            let topics = admin.list_topics().await?;
            if out.json {
                out.json(&json!(topics));
            } else {
                for t in topics {
                    println!("{t}");
                }
            }
            Ok(())
        }
        Topics::Describe { names } => describe(&names, global, out).await,
        Topics::Delete { names, yes } => {
            if !yes {
                return Err(Failure::usage(anyhow!(
                    "deleting {} loses its data: add --yes to confirm",
                    names.join(", ")
                )));
            }
            let admin = Admin::connect(&client_config(global)?).await?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            admin.delete_topics(&refs).await?;
            report(out, "deleted", &names);
            Ok(())
        }
        Topics::AlterPartitions { name, partitions } => {
            let admin = Admin::connect(&client_config(global)?).await?;
            admin.create_partitions(&name, partitions).await?;
            report(out, "altered", std::slice::from_ref(&name));
            Ok(())
        }
    }
}

fn report(out: &Output, verb: &str, names: &[String]) {
    if out.json {
        out.json(&json!({ verb: names }));
    } else {
        for n in names {
            println!("{verb} {n}");
        }
    }
}

fn parse_pairs(pairs: &[String], flag: &str) -> CliResult<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Failure::usage(anyhow!("{flag} {p:?}: expected KEY=VALUE")))
        })
        .collect()
}

async fn create(c: Create, global: &Global, out: &Output) -> CliResult {
    let mut specs: Vec<TopicSpec> = match (&c.manifest, &c.name) {
        (Some(path), None) => manifest::load(path).map_err(Failure::usage)?,
        (None, Some(name)) => {
            let partitions = match (c.partitions, c.suggest_partitions) {
                (Some(p), _) => p,
                (None, true) => 0, // filled in below
                (None, false) => {
                    return Err(Failure::usage(anyhow!(
                        "topic {name}: pass --partitions N (or --suggest-partitions with --target-mbps and --max-consumers)"
                    )));
                }
            };
            vec![TopicSpec {
                name: name.clone(),
                partitions,
                replication: c.replication.unwrap_or(-1),
                configs: parse_pairs(&c.topic_config, "--topic-config")?,
            }]
        }
        _ => {
            return Err(Failure::usage(anyhow!(
                "give a topic name with --partitions, or --manifest FILE"
            )));
        }
    };
    if c.suggest_partitions {
        let target = c.target_mbps.unwrap_or(0.0);
        let consumers = c.max_consumers.unwrap_or(1);
        let n = suggest_partitions(target, consumers);
        eprintln!(
            "suggested partitions: max(ceil({target} MB/s / 10 MB/s per partition), {consumers} consumers) = {n}"
        );
        for s in &mut specs {
            s.partitions = n;
        }
    }
    if !c.allow_legacy_name {
        for s in &specs {
            manifest::check_name(&s.name).map_err(|e| Failure::usage(anyhow!(e)))?;
        }
    }
    let admin = Admin::connect(&client_config(global)?).await?;
    let mut created = Vec::new();
    let mut skipped = Vec::new();
    for s in &specs {
        let topic = s.configs.iter().fold(
            NewTopic::new(&s.name, s.partitions, s.replication),
            |t, (k, v)| t.config(k, v),
        );
        match admin.create_topics(&[topic]).await {
            Ok(()) => created.push(s.name.clone()),
            Err(e) if c.if_not_exists && e.code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {
                skipped.push(s.name.clone());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if out.json {
        out.json(&json!({ "created": created, "already_existed": skipped }));
    } else {
        for n in &created {
            println!("created {n}");
        }
        for n in &skipped {
            println!("exists  {n}");
        }
    }
    Ok(())
}

async fn describe(names: &[String], global: &Global, out: &Output) -> CliResult {
    let admin = Admin::connect(&client_config(global)?).await?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let meta = admin.describe_topics(&refs).await?;
    let mut json_topics = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let Some(t) = meta.topic(name) else {
            missing.push(name.clone());
            continue;
        };
        if let Some(code) = t.error {
            missing.push(format!("{name} ({code})"));
            continue;
        }
        let configs = admin.describe_topic_config(name).await?;
        let replication = t.partitions.first().map(|p| p.replicas.len()).unwrap_or(0);
        if out.json {
            json_topics.push(json!({
                "name": t.name,
                "partitions": t.partitions.iter().map(|p| json!({
                    "partition": p.id,
                    "leader": p.leader,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "offline": p.offline,
                })).collect::<Vec<_>>(),
                "replication": replication,
                "configs": configs,
            }));
            continue;
        }
        println!(
            "{}  partitions={}  replication={}",
            out.bold(&t.name),
            t.partitions.len(),
            replication
        );
        let rows: Vec<Vec<String>> = t
            .partitions
            .iter()
            .map(|p| {
                let under = p.isr.len() < p.replicas.len();
                let isr = format!("{:?}", p.isr);
                vec![
                    p.id.to_string(),
                    p.leader.map_or_else(|| out.red("none"), |l| l.to_string()),
                    format!("{:?}", p.replicas),
                    if under { out.red(&isr) } else { isr },
                ]
            })
            .collect();
        out.table(&["partition", "leader", "replicas", "isr"], &rows);
        let shown: Vec<String> = [
            "cleanup.policy",
            "retention.ms",
            "min.insync.replicas",
            "compression.type",
        ]
        .iter()
        .filter_map(|k| {
            configs
                .get(*k)
                .and_then(|v| v.as_ref())
                .map(|v| format!("{k}={v}"))
        })
        .collect();
        println!("configs: {}", shown.join("  "));
        println!();
    }
    if out.json {
        out.json(&json!({ "topics": json_topics, "missing": missing }));
    }
    if !missing.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow!("no such topic: {}", missing.join(", ")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_of_thumb() {
        assert_eq!(suggest_partitions(100.0, 3), 10);
        assert_eq!(suggest_partitions(5.0, 12), 12);
        assert_eq!(suggest_partitions(0.0, 0), 1);
        assert_eq!(suggest_partitions(25.0, 1), 3);
        assert_eq!(suggest_partitions(f64::NAN, 2), 2);
    }
}
