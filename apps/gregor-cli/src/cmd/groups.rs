//! `gregor groups`: list, describe, lag (with an alert threshold), reset-offsets.

use std::collections::BTreeMap;

use anyhow::anyhow;
use clap::Subcommand;
use gregor_client::{Admin, GroupLag, KafkaCode, OffsetSpec, TopicPartition};
use serde_json::json;

use super::client_config;
use crate::output::Output;
use crate::scan;
use crate::{CliResult, Failure, Global};

/// Exit code of `groups lag` when the lag is above `--alert-lag`.
pub(crate) const EXIT_LAG_ALERT: u8 = 3;
/// Exit code of `groups reset-offsets` when the group has active members.
pub(crate) const EXIT_GROUP_ACTIVE: u8 = 4;

#[derive(Debug, Subcommand)]
pub(crate) enum Groups {
    /// List consumer groups with their state.
    List,
    /// Members, their assignments, and the lag of each partition.
    Describe {
        /// Groups to describe.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Lag per partition and in total, as kafka-consumer-groups --describe computes it
    /// (log end offset minus committed offset).
    ///
    /// With --alert-lag N the command exits with code 3 when the group's total lag is above N
    /// (the classic lag monitor's threshold), after printing the table.
    Lag {
        /// Group.
        group: String,
        /// Exit with code 3 when the total lag is above this.
        #[arg(long, value_name = "N")]
        alert_lag: Option<i64>,
    },
    /// Move a group's committed offsets (the group must have no active member).
    ///
    /// With --dry-run the offsets before and after are printed and nothing changes. A group
    /// with active members is refused with exit code 4: stop its consumers first.
    ResetOffsets(Reset),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "to_offset"])))]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
pub(crate) struct Reset {
    /// Group.
    group: String,
    /// Reset this topic's partitions (all of them); repeatable.
    #[arg(long)]
    topic: Vec<String>,
    /// Reset every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// To the log start of each partition.
    #[arg(long)]
    to_earliest: bool,
    /// To the end of each partition (skip everything not read yet).
    #[arg(long)]
    to_latest: bool,
    /// To the first record at or after this time (RFC 3339 or epoch ms); the end where none.
    #[arg(long, value_name = "TIME")]
    to_datetime: Option<String>,
    /// To this offset in every partition (clamped to the partition's earliest and latest).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Show the offsets before and after, change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) async fn run(cmd: Groups, global: &Global, out: &Output) -> CliResult {
    let admin = Admin::connect(&client_config(global)?).await?;
    match cmd {
        Groups::List => {
            let groups = admin.list_groups().await?;
            if out.json {
                out.json(&json!(
                    groups
                        .iter()
                        .map(|g| json!({"group": g.group, "state": g.state, "protocol_type": g.protocol_type, "type": g.group_type}))
                        .collect::<Vec<_>>()
                ));
            } else {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.group.clone(),
                            g.state.clone(),
                            g.protocol_type.clone(),
                            g.group_type.clone(),
                        ]
                    })
                    .collect();
                out.table(&["group", "state", "protocol", "type"], &rows);
            }
            Ok(())
        }
        Groups::Describe { groups } => describe(&admin, &groups, out).await,
        Groups::Lag { group, alert_lag } => lag(&admin, &group, alert_lag, out).await,
        Groups::ResetOffsets(r) => reset(&admin, r, out).await,
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn lag_rows(lags: &[GroupLag]) -> Vec<Vec<String>> {
    lags.iter()
        .map(|l| {
            vec![
                l.topic.clone(),
                l.partition.to_string(),
                opt(l.committed),
                opt(l.end_offset),
                opt(l.lag),
                l.member.clone().unwrap_or_else(|| "-".to_owned()),
                l.host.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect()
}

fn lag_json(lags: &[GroupLag]) -> serde_json::Value {
    json!(
        lags.iter()
            .map(|l| json!({
                "topic": l.topic,
                "partition": l.partition,
                "committed": l.committed,
                "end_offset": l.end_offset,
                "lag": l.lag,
                "member": l.member,
                "host": l.host,
                "client_id": l.client_id,
            }))
            .collect::<Vec<_>>()
    )
}

const LAG_HEADERS: [&str; 7] = [
    "topic",
    "partition",
    "committed",
    "end",
    "lag",
    "member",
    "host",
];

async fn describe(admin: &Admin, groups: &[String], out: &Output) -> CliResult {
    let mut all = Vec::new();
    for g in groups {
        let d = admin.describe_group(g).await?;
        let lags = admin.group_lag(g).await?;
        if out.json {
            all.push(json!({
                "group": d.group,
                "state": d.state,
                "protocol_type": d.protocol_type,
                "assignor": d.protocol,
                "members": d.members.iter().map(|m| json!({
                    "member_id": m.member_id,
                    "instance_id": m.instance_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "assignment": m.assignment.iter().map(|p| json!({"topic": p.topic, "partition": p.partition})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "partitions": lag_json(&lags),
                "total_lag": lags.iter().filter_map(|l| l.lag).sum::<i64>(),
            }));
            continue;
        }
        println!(
            "{}  state={}  assignor={}  members={}",
            out.bold(&d.group),
            d.state,
            if d.protocol.is_empty() {
                "-"
            } else {
                &d.protocol
            },
            d.members.len()
        );
        let members: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.host.clone(),
                    m.assignment
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        if !members.is_empty() {
            out.table(&["member", "client", "host", "assignment"], &members);
        }
        out.table(&LAG_HEADERS, &lag_rows(&lags));
        println!();
    }
    if out.json {
        out.json(&json!(all));
    }
    Ok(())
}

async fn lag(admin: &Admin, group: &str, alert: Option<i64>, out: &Output) -> CliResult {
    let d = admin.describe_group(group).await?;
    let lags = admin.group_lag(group).await?;
    if d.state == "Dead" && lags.is_empty() {
        return Err(Failure::usage(anyhow!(
            "group {group} does not exist (no members, no committed offsets): check the name with `gregor groups list`"
        )));
    }
    let total: i64 = lags.iter().filter_map(|l| l.lag).sum();
    if out.json {
        out.json(&json!({
            "group": group,
            "state": d.state,
            "partitions": lag_json(&lags),
            "total_lag": total,
            "alert_lag": alert,
        }));
    } else {
        out.table(&LAG_HEADERS, &lag_rows(&lags));
        println!("total lag: {total}");
    }
    if let Some(limit) = alert.filter(|limit| total > *limit) {
        return Err(Failure::with_code(
            EXIT_LAG_ALERT,
            anyhow!("group {group}: total lag {total} is above --alert-lag {limit}"),
        ));
    }
    Ok(())
}

async fn reset(admin: &Admin, r: Reset, out: &Output) -> CliResult {
    let description = admin.describe_group(&r.group).await?;
    if description.is_active() {
        return Err(Failure::with_code(
            EXIT_GROUP_ACTIVE,
            anyhow!(
                "group {} has {} active member(s) (state {}): stop its consumers, then reset",
                r.group,
                description.members.len(),
                description.state
            ),
        ));
    }
    let committed = admin.committed_offsets(&r.group).await?;
    let partitions: Vec<TopicPartition> = if r.all_topics {
        if committed.is_empty() {
            return Err(Failure::usage(anyhow!(
                "group {} has no committed offsets: name the topics with --topic",
                r.group
            )));
        }
        committed.keys().cloned().collect()
    } else {
        let mut out = Vec::new();
        for t in &r.topic {
            out.extend(scan::partitions(admin, t, &[]).await?);
        }
        out
    };
    let spec_of = |spec: OffsetSpec| -> Vec<(&str, i32, OffsetSpec)> {
        partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, spec))
            .collect()
    };
    let listed = |v: Vec<gregor_client::ListedOffset>| -> BTreeMap<TopicPartition, Option<i64>> {
        v.into_iter()
            .map(|l| (TopicPartition::new(l.topic, l.partition), l.offset))
            .collect()
    };
    let earliest = listed(
        admin
            .list_offsets(&spec_of(OffsetSpec::Earliest), false)
            .await?,
    );
    let latest = listed(
        admin
            .list_offsets(&spec_of(OffsetSpec::Latest), false)
            .await?,
    );
    let by_time = match &r.to_datetime {
        Some(t) => {
            let ms =
                scan::parse_time(t).map_err(|e| Failure::usage(anyhow!("--to-datetime {e}")))?;
            Some(listed(
                admin
                    .list_offsets(&spec_of(OffsetSpec::Timestamp(ms)), false)
                    .await?,
            ))
        }
        None => None,
    };
    let mut plan = Vec::with_capacity(partitions.len());
    for p in &partitions {
        let lo = earliest.get(p).copied().flatten().unwrap_or(0);
        let hi = latest.get(p).copied().flatten().unwrap_or(lo);
        let target = if r.to_earliest {
            lo
        } else if r.to_latest {
            hi
        } else if let Some(found) = &by_time {
            found.get(p).copied().flatten().unwrap_or(hi)
        } else if let Some(o) = r.to_offset {
            o.clamp(lo, hi)
        } else {
            return Err(Failure::usage(anyhow!(
                "choose --to-earliest, --to-latest, --to-datetime or --to-offset"
            )));
        };
        plan.push((p.clone(), committed.get(p).copied(), target));
    }
    if !r.dry_run {
        let offsets: Vec<(TopicPartition, i64)> =
            plan.iter().map(|(p, _, t)| (p.clone(), *t)).collect();
        admin
            .reset_group_offsets(&r.group, &offsets)
            .await
            .map_err(|e| {
                if e.code() == Some(KafkaCode(68)) {
                    Failure::with_code(EXIT_GROUP_ACTIVE, e)
                } else {
                    Failure::from(e)
                }
            })?;
    }
    if out.json {
        out.json(&json!({
            "group": r.group,
            "dry_run": r.dry_run,
            "partitions": plan.iter().map(|(p, before, after)| json!({
                "topic": p.topic, "partition": p.partition, "before": before, "after": after,
            })).collect::<Vec<_>>(),
        }));
    } else {
        let rows: Vec<Vec<String>> = plan
            .iter()
            .map(|(p, before, after)| {
                vec![
                    p.topic.clone(),
                    p.partition.to_string(),
                    opt(*before),
                    after.to_string(),
                ]
            })
            .collect();
        out.table(&["topic", "partition", "before", "after"], &rows);
        if r.dry_run {
            println!("dry run: nothing changed (run again without --dry-run to apply)");
        } else {
            println!("group {} moved ({} partitions)", r.group, plan.len());
        }
    }
    Ok(())
}
