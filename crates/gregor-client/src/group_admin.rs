//! Consumer-group administration on [`Admin`]: list and describe groups, read their committed
//! offsets and lag, and move the offsets of a group that has no active member.
//!
//! ```text
//! list_groups      ─▶ Metadata (brokers) ─▶ ListGroups to every broker (each lists its own groups)
//! describe_group   ─▶ FindCoordinator ─▶ DescribeGroups (members, decoded assignments)
//! committed_offsets ─▶ FindCoordinator ─▶ OffsetFetch (all topics of the group)
//! group_lag        ─▶ describe + committed ─▶ ListOffsets latest ─▶ end - committed
//! reset_group_offsets ─▶ describe (refuse if members) ─▶ OffsetCommit (generation -1)
//! ```
//!
//! The coordinator lookup and the offset commit are the consumer's own
//! (`consumer/group.rs`); only the requests a member never sends live here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
    offset_fetch_request::OffsetFetchRequestGroup,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{Admin, OffsetSpec};
use crate::consumer::TopicPartition;
use crate::consumer::{assignor, group};
use crate::error::{Context, Error, KafkaCode, Result};

/// ListGroups v5 (state and type filters); Kafka 4.x serves 0-5.
const LIST_GROUPS_MAX: i16 = 5;
/// DescribeGroups v5 (static members' instance ids).
const DESCRIBE_GROUPS_MAX: i16 = 5;
/// OffsetFetch v8 (groups array, topic names; a null topic list means every topic).
const OFFSET_FETCH_MAX: i16 = 8;
/// A transactional offset commit is pending: ask again shortly.
const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);
/// Kafka's code for "the group still has members" (what Java's admin answers too).
const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
const OFFSET_FETCH_ATTEMPTS: u32 = 20;

/// A group as `ListGroups` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// Group id.
    pub group: String,
    /// Protocol type: `consumer` for consumer groups, empty for groups that only commit offsets.
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, `PreparingRebalance`, ...).
    pub state: String,
    /// Group type (`classic`, `consumer`), empty from brokers before Kafka 3.8.
    pub group_type: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The host the member connected from.
    pub host: String,
    /// Partitions assigned to it (consumer groups; empty while rebalancing).
    pub assignment: Vec<TopicPartition>,
}

/// A group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// State: `Stable`, `Empty` (no members, offsets kept), `Dead` (unknown group), ...
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// The assignor the group chose (`range`, `cooperative-sticky`, ...).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// Whether any consumer is in the group (its offsets must not be moved then).
    pub fn is_active(&self) -> bool {
        !self.members.is_empty()
    }

    /// The member a partition is assigned to.
    pub fn owner(&self, partition: &TopicPartition) -> Option<&GroupMember> {
        self.members
            .iter()
            .find(|m| m.assignment.contains(partition))
    }
}

/// Lag of one partition of a group, as Kafka's `kafka-consumer-groups --describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset (the next record it will read); `None`: nothing committed.
    pub committed: Option<i64>,
    /// The log end offset (high watermark); `None` if the topic no longer exists.
    pub end_offset: Option<i64>,
    /// `end_offset - committed` when both are known.
    pub lag: Option<i64>,
    /// Member id of the consumer that owns the partition now, if any.
    pub member: Option<String>,
    /// That member's host.
    pub host: Option<String>,
    /// That member's `client.id`.
    pub client_id: Option<String>,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Admin {
    fn coordinator(&self, group: &str) -> group::Coordinator {
        group::Coordinator::new(
            group.to_owned(),
            Arc::clone(&self.brokers),
            self.brokers.options().clone(),
        )
    }

    /// Every group of the cluster (ListGroups on each broker), sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let meta = self.brokers.metadata(Some(&[])).await?;
        let mut out = BTreeMap::new();
        for broker in &meta.brokers {
            let conn = self.brokers.node(broker.id).await?;
            let response = conn
                .send(&ListGroupsRequest::default(), LIST_GROUPS_MAX)
                .await?;
            Error::check(response.error_code, || {
                Context::broker(format!("{}:{}", broker.host, broker.port))
            })?;
            for g in response.groups {
                let group = g.group_id.0.to_string();
                out.insert(
                    group.clone(),
                    GroupListing {
                        group,
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                        group_type: g.group_type.to_string(),
                    },
                );
            }
        }
        Ok(out.into_values().collect())
    }

    /// Describes `group` through its coordinator. A group nobody ever used is reported in
    /// state `Dead` with no members, as Kafka does.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let coordinator = self.coordinator(group);
        let conn = coordinator.connection().await?;
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(str_bytes(group))])
            .with_include_authorized_operations(false);
        let response = conn.send(&request, DESCRIBE_GROUPS_MAX).await?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| Error::Protocol {
                broker: conn.addr().to_owned(),
                message: format!("DescribeGroups response does not mention group {group}"),
            })?;
        if let Some(code) = KafkaCode::from_code(described.error_code) {
            return Err(Error::kafka(
                code,
                Context::group(group),
                described.error_message.map(|m| m.to_string()),
            ));
        }
        let protocol_type = described.protocol_type.to_string();
        let mut members = Vec::with_capacity(described.members.len());
        for m in described.members {
            let assignment = if protocol_type == "consumer" && !m.member_assignment.is_empty() {
                let mut a = assignor::decode_assignment(&m.member_assignment).map_err(|e| {
                    Error::Protocol {
                        broker: conn.addr().to_owned(),
                        message: format!(
                            "group {group}: assignment of member {}: {e}",
                            m.member_id.as_str()
                        ),
                    }
                })?;
                a.sort();
                a.into_iter()
                    .map(|(t, p)| TopicPartition::new(t, p))
                    .collect()
            } else {
                Vec::new()
            };
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            });
        }
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        Ok(GroupDescription {
            group: group.to_owned(),
            state: described.group_state.to_string(),
            protocol_type,
            protocol: described.protocol_data.to_string(),
            members,
        })
    }

    /// Every offset `group` has committed (OffsetFetch for all its topics), by partition.
    /// Waits out pending transactional commits.
    pub async fn committed_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let coordinator = self.coordinator(group);
        let request = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(group)))
                    .with_topics(None),
            ]);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = coordinator.connection().await?;
            let response = conn.send(&request, OFFSET_FETCH_MAX).await?;
            let mut out = BTreeMap::new();
            let mut failed = None;
            'groups: for g in response.groups {
                if let Some(code) = KafkaCode::from_code(g.error_code) {
                    failed = Some(Error::kafka(code, Context::group(group), None));
                    break;
                }
                for t in g.topics {
                    let topic = t.name.0.to_string();
                    for p in t.partitions {
                        if let Some(code) = KafkaCode::from_code(p.error_code) {
                            failed = Some(Error::kafka(
                                code,
                                Context::partition(topic.clone(), p.partition_index)
                                    .with_group(group),
                                None,
                            ));
                            break 'groups;
                        }
                        if p.committed_offset >= 0 {
                            out.insert(
                                TopicPartition::new(topic.clone(), p.partition_index),
                                p.committed_offset,
                            );
                        }
                    }
                }
            }
            let Some(e) = failed else {
                return Ok(out);
            };
            let again = e.code().is_some_and(|c| {
                c == UNSTABLE_OFFSET_COMMIT
                    || matches!(
                        c,
                        KafkaCode::NOT_COORDINATOR
                            | KafkaCode::COORDINATOR_NOT_AVAILABLE
                            | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                    )
            });
            if !again || attempt >= OFFSET_FETCH_ATTEMPTS {
                return Err(e);
            }
            coordinator.invalidate();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Lag of `group` per partition: every partition it committed an offset for or that is
    /// assigned to one of its members, with the log end offset (read_uncommitted, as Kafka's
    /// own tool), sorted by topic and partition. Partitions of deleted topics have no end.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<GroupLag>> {
        let description = self.describe_group(group).await?;
        let committed = self.committed_offsets(group).await?;
        let mut partitions: BTreeSet<TopicPartition> = committed.keys().cloned().collect();
        for m in &description.members {
            partitions.extend(m.assignment.iter().cloned());
        }
        let topics: BTreeSet<&str> = partitions.iter().map(|p| p.topic.as_str()).collect();
        let topics: Vec<&str> = topics.into_iter().collect();
        let ends = if topics.is_empty() {
            BTreeMap::new()
        } else {
            let meta = self.describe_topics(&topics).await?;
            let live: Vec<(&str, i32, OffsetSpec)> = partitions
                .iter()
                .filter(|p| {
                    meta.topic(&p.topic).is_some_and(|t| {
                        t.error.is_none() && t.partitions.iter().any(|x| x.id == p.partition)
                    })
                })
                .map(|p| (p.topic.as_str(), p.partition, OffsetSpec::Latest))
                .collect();
            if live.is_empty() {
                BTreeMap::new()
            } else {
                self.list_offsets(&live, false)
                    .await?
                    .into_iter()
                    .filter_map(|l| {
                        l.offset
                            .map(|o| (TopicPartition::new(l.topic, l.partition), o))
                    })
                    .collect()
            }
        };
        Ok(partitions
            .into_iter()
            .map(|p| {
                let committed = committed.get(&p).copied();
                let end_offset = ends.get(&p).copied();
                let owner = description.owner(&p);
                GroupLag {
                    lag: committed.zip(end_offset).map(|(c, e)| e - c),
                    committed,
                    end_offset,
                    member: owner.map(|m| m.member_id.clone()),
                    host: owner.map(|m| m.host.clone()),
                    client_id: owner.map(|m| m.client_id.clone()),
                    topic: p.topic,
                    partition: p.partition,
                }
            })
            .collect())
    }

    /// Sets `group`'s committed offsets (the next offset each partition will be read from).
    ///
    /// Only a group without members can be moved: with active members the call fails with
    /// `NON_EMPTY_GROUP` and changes nothing (stop the consumers first). A member joining
    /// between the check and the commit makes the broker refuse the commit.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let description = self.describe_group(group).await?;
        if description.is_active() {
            return Err(Error::kafka(
                NON_EMPTY_GROUP,
                Context::group(group),
                Some(format!(
                    "{} active member(s) in state {}: stop the consumers before moving the group's offsets",
                    description.members.len(),
                    description.state
                )),
            ));
        }
        let coordinator = self.coordinator(group);
        let offsets: Vec<(String, i32, i64)> = offsets
            .iter()
            .map(|(p, o)| (p.topic.clone(), p.partition, *o))
            .collect();
        // Generation -1 and no member id: the commit of a group nobody is a member of.
        group::commit(&coordinator, group, -1, "", None, &offsets).await
    }
}
