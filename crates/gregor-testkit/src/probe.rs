//! What a cluster looks like right now: brokers, controller, partition leaders and ISRs.
//!
//! rskafka's metadata does not expose leaders, and fault tests need them ("kill the leader of
//! partition 0"), so the testkit sends one Metadata request of its own with the kafka-protocol
//! codecs. This is test infrastructure; gregor-client has its own admin path for users.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

const METADATA_VERSION: i16 = 12;
/// A metadata response for a test cluster is a few KiB; anything past this is not Kafka talking.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Brokers and topics as one broker sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Live broker ids, sorted.
    pub brokers: Vec<i32>,
    /// Active controller id as reported to clients (-1 if unknown).
    pub controller: i32,
    /// The topics asked for (or all of them).
    pub topics: Vec<TopicMetadata>,
}

/// One topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Kafka error code for the topic (0 = none).
    pub error_code: i16,
    /// Partitions, sorted by id.
    pub partitions: Vec<PartitionMetadata>,
}

/// One partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition id.
    pub id: i32,
    /// Leader broker id (-1 while there is none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

impl ClusterMetadata {
    /// The partition, if the topic and partition are known.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMetadata> {
        self.topics
            .iter()
            .find(|t| t.name == topic)?
            .partitions
            .iter()
            .find(|p| p.id == partition)
    }
}

/// Sends one Metadata request to `addr` (`host:port`), for `topics` or all topics when empty.
pub async fn metadata(addr: &str, topics: &[&str]) -> Result<ClusterMetadata> {
    let fail = |detail: String| Error::Kafka {
        bootstrap: addr.to_owned(),
        detail,
    };
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| fail(format!("connect: {e}")))?;
        let request = encode_request(topics).map_err(|e| fail(format!("encode: {e}")))?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| fail(format!("write: {e}")))?;
        let len = stream
            .read_i32()
            .await
            .map_err(|e| fail(format!("read: {e}")))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (4..=MAX_RESPONSE).contains(l))
            .ok_or_else(|| fail(format!("response declares {len} bytes")))?;
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| fail(format!("read: {e}")))?;
        decode_response(Bytes::from(body)).map_err(fail)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| fail("no metadata response within 10 s".into()))?
}

fn encode_request(topics: &[&str]) -> std::result::Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("gregor-testkit")));
    let request = MetadataRequest::default()
        .with_topics(if topics.is_empty() {
            None
        } else {
            Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*t).to_owned()))))
                    })
                    .collect(),
            )
        })
        .with_allow_auto_topic_creation(false);
    let mut body = BytesMut::new();
    header
        .encode(
            &mut body,
            ApiKey::Metadata.request_header_version(METADATA_VERSION),
        )
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut body, METADATA_VERSION)
        .map_err(|e| e.to_string())?;
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(i32::try_from(body.len()).map_err(|e| e.to_string())?);
    framed.extend_from_slice(&body);
    Ok(framed)
}

fn decode_response(mut body: Bytes) -> std::result::Result<ClusterMetadata, String> {
    let _header = ResponseHeader::decode(
        &mut body,
        ApiKey::Metadata.response_header_version(METADATA_VERSION),
    )
    .map_err(|e| format!("response header: {e}"))?;
    let response = MetadataResponse::decode(&mut body, METADATA_VERSION)
        .map_err(|e| format!("metadata response: {e}"))?;
    if body.has_remaining() {
        return Err(format!(
            "{} bytes left after the metadata response",
            body.remaining()
        ));
    }
    let mut brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort_unstable();
    let topics = response
        .topics
        .into_iter()
        .map(|t| {
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    id: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            TopicMetadata {
                name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                error_code: t.error_code,
                partitions,
            }
        })
        .collect();
    Ok(ClusterMetadata {
        brokers,
        controller: response.controller_id.0,
        topics,
    })
}
