//! Connections by broker, and cluster metadata: the one Metadata path of gregor's own requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{
    MetadataRequest, TopicName, metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::StrBytes;

use super::{ConnectOptions, Connection};
use crate::admin::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
use crate::config::ClientConfig;
use crate::error::{Error, KafkaCode, Result};
use crate::security::Security;

/// Metadata v12: topic ids, leader epochs, offline replicas; Kafka 4.x serves up to 13.
const METADATA_MAX_VERSION: i16 = 12;

/// Broker connections (one per address, replaced when dead) and the broker id -> address map.
#[derive(Debug)]
pub(crate) struct Brokers {
    bootstrap: Vec<String>,
    opts: ConnectOptions,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    addrs: HashMap<i32, String>,
    conns: HashMap<String, Arc<Connection>>,
}

impl Brokers {
    /// Reads bootstrap servers and timeouts from `config`; connects lazily.
    pub(crate) fn new(config: &ClientConfig) -> Result<Brokers> {
        config.validate()?;
        Ok(Brokers {
            bootstrap: config.bootstrap_servers()?,
            opts: ConnectOptions {
                client_id: config.client_id().to_owned(),
                connect_timeout: config.duration_ms("socket.connection.setup.timeout.ms"),
                request_timeout: config.request_timeout(),
                security: Security::from_config(config)?,
            },
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The options every connection opens with (group coordinators of `Admin` reuse them).
    pub(crate) fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// TLS and SASL of every connection: the producer hands the same to rskafka.
    pub(crate) fn security(&self) -> &Security {
        &self.opts.security
    }

    /// The request timeout every connection uses.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.opts.request_timeout
    }

    /// A live connection to `addr`, opened if needed.
    pub(crate) async fn connect(&self, addr: &str) -> Result<Arc<Connection>> {
        if let Some(conn) = self.lock().conns.get(addr).filter(|c| !c.is_dead()) {
            return Ok(Arc::clone(conn));
        }
        let conn = Arc::new(Connection::connect(addr, &self.opts).await?);
        self.lock().conns.insert(addr.to_owned(), Arc::clone(&conn));
        Ok(conn)
    }

    /// A connection to any broker: known brokers first, then the bootstrap list. The error
    /// names every address tried and why each failed.
    pub(crate) async fn any(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<String> = {
            let state = self.lock();
            let mut live: Vec<String> = state
                .conns
                .iter()
                .filter(|(_, c)| !c.is_dead())
                .map(|(a, _)| a.clone())
                .collect();
            live.sort();
            let mut known: Vec<String> = state.addrs.values().cloned().collect();
            known.sort();
            live.into_iter().chain(known).collect()
        };
        candidates.extend(self.bootstrap.iter().cloned());
        candidates.dedup();
        let mut failures = Vec::new();
        let mut refused = None;
        for addr in &candidates {
            match self.connect(addr).await {
                Ok(conn) => return Ok(conn),
                // TLS, SASL or configuration: not a reachability problem, and the next broker
                // would say the same. Returned as is, typed, once every address was tried.
                Err(e) if !e.is_retriable() => {
                    refused.get_or_insert(e);
                }
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        if let Some(e) = refused {
            return Err(e);
        }
        Err(Error::Connection {
            broker: self.bootstrap.join(","),
            message: format!(
                "no broker reachable (bootstrap.servers={}): {}",
                self.bootstrap.join(","),
                failures.join("; ")
            ),
        })
    }

    /// A connection to broker `node_id`, refreshing metadata once if the id is unknown.
    pub(crate) async fn node(&self, node_id: i32) -> Result<Arc<Connection>> {
        let known = self.lock().addrs.get(&node_id).cloned();
        let addr = match known {
            Some(addr) => addr,
            None => {
                self.metadata(Some(&[])).await?;
                self.lock()
                    .addrs
                    .get(&node_id)
                    .cloned()
                    .ok_or_else(|| Error::Connection {
                        broker: format!("node {node_id}"),
                        message: "not in the cluster's metadata".into(),
                    })?
            }
        };
        self.connect(&addr).await
    }

    /// Metadata for `topics` (`None`: every topic; `Some(&[])`: brokers only).
    pub(crate) async fn metadata(&self, topics: Option<&[&str]>) -> Result<ClusterMetadata> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*t).to_owned()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let conn = self.any().await?;
        let response = conn.send(&request, METADATA_MAX_VERSION).await?;
        let brokers: Vec<BrokerInfo> = response
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect();
        {
            let mut state = self.lock();
            state.addrs = brokers
                .iter()
                .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
                .collect();
        }
        let mut topics: Vec<TopicInfo> = response
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        id: p.partition_index,
                        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                        error: KafkaCode::from_code(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                TopicInfo {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    internal: t.is_internal,
                    partitions,
                    error: KafkaCode::from_code(t.error_code),
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ClusterMetadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
            topics,
        })
    }
}
