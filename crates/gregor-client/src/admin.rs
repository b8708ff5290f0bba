//! `Admin`: topics, partitions, configs, offsets by time, cluster metadata.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, ListOffsetsRequest, TopicName,
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    delete_topics_request::DeleteTopicState,
    describe_configs_request::DescribeConfigsResource,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
};
use kafka_protocol::protocol::StrBytes;

use crate::config::ClientConfig;
use crate::error::{Context, Error, KafkaCode, Result};
use crate::wire::pool::Brokers;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

/// One partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// Leader broker, `None` while there is none.
    pub leader: Option<i32>,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica brokers.
    pub replicas: Vec<i32>,
    /// In-sync replica brokers.
    pub isr: Vec<i32>,
    /// Replicas whose log directory is offline.
    pub offline: Vec<i32>,
    /// Partition-level error, if any (e.g. `LEADER_NOT_AVAILABLE`).
    pub error: Option<KafkaCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Internal topic (`__consumer_offsets`, ...).
    pub internal: bool,
    /// Partitions by id.
    pub partitions: Vec<PartitionInfo>,
    /// Topic-level error (e.g. `UNKNOWN_TOPIC_OR_PARTITION`).
    pub error: Option<KafkaCode>,
}

/// The cluster as one broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterMetadata {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller as reported to clients.
    pub controller: Option<i32>,
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics asked for, sorted by name.
    pub topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    /// The topic, if present.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions (-1: the broker's `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1: the broker's `default.replication.factor`).
    pub replication: i16,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication` replicas, no configs.
    pub fn new(name: impl Into<String>, partitions: i32, replication: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// Which offset [`Admin::list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (the offset the next record will get).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// An offset found by [`Admin::list_offsets`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset; `None` for a timestamp lookup when no record is at or after the time.
    pub offset: Option<i64>,
    /// The record's timestamp for timestamp lookups, -1 otherwise.
    pub timestamp: i64,
}

/// Cluster administration over gregor's own connections.
///
/// ```no_run
/// # async fn example() -> gregor_client::Result<()> {
/// use gregor_client::{Admin, ClientConfig, NewTopic};
///
/// let config = ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092")?;
/// let admin = Admin::connect(&config).await?;
/// admin
///     .create_topics(&[NewTopic::new("commerce.orders.created", 3, 1).config("retention.ms", "86400000")])
///     .await?;
/// let meta = admin.describe_topics(&["commerce.orders.created"]).await?;
/// assert_eq!(meta.topics[0].partitions.len(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Admin {
    // Shared with group coordinators (group_admin.rs).
    pub(crate) brokers: Arc<Brokers>,
}

/// CreateTopics v7 (topic ids in the response); Kafka 4.x accepts 2-7.
const CREATE_TOPICS_MAX: i16 = 7;
const DELETE_TOPICS_MAX: i16 = 6;
const CREATE_PARTITIONS_MAX: i16 = 3;
const DESCRIBE_CONFIGS_MAX: i16 = 4;
const ALTER_CONFIGS_MAX: i16 = 1;
/// ListOffsets v7 (max timestamp) is enough; Kafka 4.x accepts 1-11.
const LIST_OFFSETS_MAX: i16 = 7;
const TOPIC_RESOURCE: i8 = 2;

impl Admin {
    /// Checks the configuration and connects to a broker from `bootstrap.servers`. The error
    /// names every server tried when none answers.
    pub async fn connect(config: &ClientConfig) -> Result<Admin> {
        let brokers = Brokers::new(config)?;
        brokers.any().await?;
        Ok(Admin {
            brokers: Arc::new(brokers),
        })
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.brokers.request_timeout().as_millis()).unwrap_or(i32::MAX)
    }

    /// Brokers, controller and every topic.
    pub async fn describe_cluster(&self) -> Result<ClusterMetadata> {
        self.brokers.metadata(None).await
    }

    /// Brokers, controller and the named topics (a missing topic has
    /// `error = UNKNOWN_TOPIC_OR_PARTITION`).
    pub async fn describe_topics(&self, topics: &[&str]) -> Result<ClusterMetadata> {
        self.brokers.metadata(Some(topics)).await
    }

    /// Names of all non-internal topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        Ok(self
            .brokers
            .metadata(None)
            .await?
            .topics
            .into_iter()
            .filter(|t| !t.internal)
            .map(|t| t.name)
            .collect())
    }

    /// Creates topics and waits until every partition of each has a leader, so the topics are
    /// usable when this returns. The first failure is returned, naming its topic
    /// (`TOPIC_ALREADY_EXISTS` included: check [`Error::code`] to tolerate it).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.brokers.any().await?;
        let response = conn.send(&request, CREATE_TOPICS_MAX).await?;
        for t in &response.topics {
            if let Some(code) = KafkaCode::from_code(t.error_code) {
                return Err(Error::kafka(
                    code,
                    Context::topic(t.name.0.to_string()),
                    t.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        self.wait_for_leaders(&names, self.brokers.request_timeout())
            .await
    }

    /// Waits until every partition of `topics` has a leader.
    pub async fn wait_for_leaders(&self, topics: &[&str], timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let meta = self.brokers.metadata(Some(topics)).await?;
            let ready = topics.iter().all(|name| {
                meta.topic(name).is_some_and(|t| {
                    t.error.is_none()
                        && !t.partitions.is_empty()
                        && t.partitions.iter().all(|p| p.leader.is_some())
                })
            });
            if ready {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("waiting for leaders of {}", topics.join(", ")),
                    context: Box::default(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes topics. The first failure is returned, naming its topic.
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<()> {
        let conn = self.brokers.any().await?;
        let version = conn.version::<DeleteTopicsRequest>(DELETE_TOPICS_MAX)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        if version >= 6 {
            request.topics = topics
                .iter()
                .map(|t| DeleteTopicState::default().with_name(Some(topic_name(t))))
                .collect();
        } else {
            request.topic_names = topics.iter().map(|t| topic_name(t)).collect();
        }
        let response = conn.send(&request, DELETE_TOPICS_MAX).await?;
        for r in &response.responses {
            if let Some(code) = KafkaCode::from_code(r.error_code) {
                let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                return Err(Error::kafka(
                    code,
                    Context::topic(name),
                    r.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        Ok(())
    }

    /// Grows `topic` to `total` partitions (Kafka never shrinks a topic).
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(topic_name(topic))
                    .with_count(total)
                    // null: let the controller place the new replicas.
                    .with_assignments(None),
            ]);
        let conn = self.brokers.any().await?;
        let response = conn.send(&request, CREATE_PARTITIONS_MAX).await?;
        for r in &response.results {
            if let Some(code) = KafkaCode::from_code(r.error_code) {
                return Err(Error::kafka(
                    code,
                    Context::topic(topic),
                    r.error_message.as_ref().map(|m| m.to_string()),
                ));
            }
        }
        self.wait_for_leaders(&[topic], self.brokers.request_timeout())
            .await
    }

    /// A topic's effective configs (name -> value; sensitive values are `None`).
    pub async fn describe_topic_config(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, Option<String>>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configuration_keys(None),
        ]);
        let conn = self.brokers.any().await?;
        let response = conn.send(&request, DESCRIBE_CONFIGS_MAX).await?;
        let mut out = BTreeMap::new();
        for r in response.results {
            if let Some(code) = KafkaCode::from_code(r.error_code) {
                return Err(Error::kafka(
                    code,
                    Context::topic(topic),
                    r.error_message.map(|m| m.to_string()),
                ));
            }
            for c in r.configs {
                out.insert(c.name.to_string(), c.value.map(|v| v.to_string()));
            }
        }
        Ok(out)
    }

    /// Sets (or with `None`, resets to the default) topic configs, leaving others unchanged.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(
                    changes
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                // 0 = SET, 1 = DELETE (back to the default).
                                .with_config_operation(if v.is_some() { 0 } else { 1 })
                                .with_value(v.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                ),
        ]);
        let conn = self.brokers.any().await?;
        let response = conn.send(&request, ALTER_CONFIGS_MAX).await?;
        for r in response.responses {
            if let Some(code) = KafkaCode::from_code(r.error_code) {
                return Err(Error::kafka(
                    code,
                    Context::topic(topic),
                    r.error_message.map(|m| m.to_string()),
                ));
            }
        }
        Ok(())
    }

    /// Offsets by spec for many partitions at once, one request per partition leader.
    /// `read_committed` asks for the last stable offset instead of the high watermark.
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, i32, OffsetSpec)],
        read_committed: bool,
    ) -> Result<Vec<ListedOffset>> {
        let mut topics: Vec<&str> = partitions.iter().map(|(t, _, _)| *t).collect();
        topics.sort_unstable();
        topics.dedup();
        let meta = self.brokers.metadata(Some(&topics)).await?;
        // leader -> topic -> (partition, spec)
        type ByLeader<'a> = HashMap<i32, BTreeMap<&'a str, Vec<(i32, OffsetSpec)>>>;
        let mut by_leader: ByLeader<'_> = HashMap::new();
        for &(topic, partition, spec) in partitions {
            let info = meta.topic(topic).ok_or_else(|| {
                Error::kafka(
                    KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    Context::topic(topic),
                    None,
                )
            })?;
            if let Some(code) = info.error {
                return Err(Error::kafka(code, Context::topic(topic), None));
            }
            let p = info
                .partitions
                .iter()
                .find(|p| p.id == partition)
                .ok_or_else(|| {
                    Error::kafka(
                        KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                        Context::partition(topic, partition),
                        None,
                    )
                })?;
            let leader = p.leader.ok_or_else(|| {
                Error::kafka(
                    KafkaCode::LEADER_NOT_AVAILABLE,
                    Context::partition(topic, partition),
                    None,
                )
            })?;
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic)
                .or_default()
                .push((partition, spec));
        }
        let mut out = Vec::with_capacity(partitions.len());
        for (leader, topics) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(i8::from(read_committed))
                .with_timeout_ms(self.timeout_ms())
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    ps.iter()
                                        .map(|(p, spec)| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(*p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(spec.wire())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let conn = self.brokers.node(leader).await?;
            let response = conn.send(&request, LIST_OFFSETS_MAX).await?;
            for t in response.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    if let Some(code) = KafkaCode::from_code(p.error_code) {
                        return Err(Error::kafka(
                            code,
                            Context::partition(topic.clone(), p.partition_index),
                            None,
                        ));
                    }
                    out.push(ListedOffset {
                        topic: topic.clone(),
                        partition: p.partition_index,
                        offset: (p.offset >= 0).then_some(p.offset),
                        timestamp: p.timestamp,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
