//! Entry points for the fuzz driver in `fuzz/` and the fuzz regression tests.
//!
//! **Not part of gregor-client's API: unstable, hidden from the docs, may change or vanish in
//! any release.** Each function is a thin wrapper over a crate-private decoder so that the
//! driver can feed it hostile bytes exactly as the consumer and the connection do.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::ClientConfig;
use crate::consumer::{Record, assignor, records};
use crate::error::Result;

/// What one partition's records bytes decoded to (see `consumer::records::decode`).
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records at or after the fetch offset.
    pub records: Vec<Record>,
    /// The offset after the last complete batch read, if any.
    pub next_offset: Option<i64>,
    /// Bytes of the complete batches read.
    pub bytes: usize,
    /// Where decoding stopped at corrupt data: first offset affected, offset to resume at, message.
    pub corrupt: Option<(i64, Option<i64>, String)>,
}

impl From<records::Decoded> for Decoded {
    fn from(d: records::Decoded) -> Decoded {
        Decoded {
            records: d.records,
            next_offset: d.next_offset,
            bytes: d.bytes,
            corrupt: d.corrupt.map(|c| (c.offset, c.resume_at, c.message)),
        }
    }
}

/// Decodes one partition's records bytes as the consumer does after a Fetch.
///
/// `aborted` is the response's aborted-transactions list as `(producer id, first offset)`.
pub fn decode_records(
    data: &[u8],
    fetch_offset: i64,
    aborted: &[(i64, i64)],
    check_crc: bool,
    read_committed: bool,
) -> Decoded {
    let topic: Arc<str> = Arc::from("fuzz");
    let aborted: Vec<records::Aborted> = aborted
        .iter()
        .map(|&(producer_id, first_offset)| records::Aborted {
            producer_id,
            first_offset,
        })
        .collect();
    records::decode(
        &topic,
        0,
        &Bytes::copy_from_slice(data),
        fetch_offset,
        &aborted,
        records::Options {
            check_crc,
            read_committed,
        },
    )
    .into()
}

/// A decoded `ConsumerProtocolSubscription`: topics, owned partitions, generation, user data.
pub type Subscription = (Vec<String>, Vec<(String, i32)>, i32, Option<Vec<u8>>);

/// Decodes a group member's JoinGroup metadata as the group leader does.
pub fn decode_subscription(data: &[u8]) -> std::result::Result<Subscription, String> {
    assignor::decode_subscription(&Bytes::copy_from_slice(data)).map(|s| {
        (
            s.topics,
            s.owned,
            s.generation,
            s.user_data.map(|b| b.to_vec()),
        )
    })
}

/// Encodes a subscription as gregor's members send it (for seed corpora and round trips).
pub fn encode_subscription(
    assignor_name: &str,
    topics: &[String],
    owned: &[(String, i32)],
    generation: i32,
) -> Vec<u8> {
    let sub = assignor::Subscription {
        topics: topics.to_vec(),
        owned: owned.to_vec(),
        generation,
        user_data: None,
    };
    assignor::encode_subscription(assignor_name, &sub).to_vec()
}

/// Decodes the assignment SyncGroup returned, as a member does.
pub fn decode_assignment(data: &[u8]) -> std::result::Result<Vec<(String, i32)>, String> {
    assignor::decode_assignment(&Bytes::copy_from_slice(data))
}

/// Encodes an assignment as gregor's group leader sends it.
pub fn encode_assignment(partitions: &[(String, i32)]) -> Vec<u8> {
    assignor::encode_assignment(partitions).to_vec()
}

macro_rules! responses {
    ($($name:literal, $v:literal => $req:ident,)*) => {
        /// The responses gregor decodes on its own connection: `(response name, version)`.
        pub const RESPONSES: &[(&str, i16)] = &[$(($name, $v),)*];

        /// Decodes a response frame (correlation id onwards) of `RESPONSES[index % len]` as the
        /// connection does: header, allocation guard, then kafka-protocol. Returns the
        /// response's Debug text on success.
        pub fn decode_response(index: usize, frame: &[u8]) -> std::result::Result<String, String> {
            let i = index % RESPONSES.len();
            let mut k = 0;
            $(
                if k == i {
                    return crate::wire::decode_response::<kafka_protocol::messages::$req>(
                        "fuzz",
                        Bytes::copy_from_slice(frame),
                        $v,
                    )
                    .map(|r| format!("{r:?}"))
                    .map_err(|e| e.to_string());
                }
                k += 1;
            )*
            let _ = k;
            Err(format!("no response at index {i}"))
        }
    };
}

responses! {
    "ApiVersionsResponse", 0 => ApiVersionsRequest,
    "ApiVersionsResponse", 3 => ApiVersionsRequest,
    "MetadataResponse", 12 => MetadataRequest,
    "CreateTopicsResponse", 7 => CreateTopicsRequest,
    "DeleteTopicsResponse", 6 => DeleteTopicsRequest,
    "CreatePartitionsResponse", 3 => CreatePartitionsRequest,
    "DescribeConfigsResponse", 4 => DescribeConfigsRequest,
    "IncrementalAlterConfigsResponse", 1 => IncrementalAlterConfigsRequest,
    "ListOffsetsResponse", 7 => ListOffsetsRequest,
    "FindCoordinatorResponse", 4 => FindCoordinatorRequest,
    "FindCoordinatorResponse", 5 => FindCoordinatorRequest,
    "FindCoordinatorResponse", 6 => FindCoordinatorRequest,
    "JoinGroupResponse", 7 => JoinGroupRequest,
    "JoinGroupResponse", 8 => JoinGroupRequest,
    "JoinGroupResponse", 9 => JoinGroupRequest,
    "SyncGroupResponse", 5 => SyncGroupRequest,
    "HeartbeatResponse", 4 => HeartbeatRequest,
    "LeaveGroupResponse", 5 => LeaveGroupRequest,
    "OffsetCommitResponse", 8 => OffsetCommitRequest,
    "OffsetCommitResponse", 9 => OffsetCommitRequest,
    "OffsetFetchResponse", 8 => OffsetFetchRequest,
    "OffsetFetchResponse", 9 => OffsetFetchRequest,
    "DescribeGroupsResponse", 5 => DescribeGroupsRequest,
    "ListGroupsResponse", 4 => ListGroupsRequest,
    "ListGroupsResponse", 5 => ListGroupsRequest,
    "DeleteGroupsResponse", 2 => DeleteGroupsRequest,
    "OffsetDeleteResponse", 0 => OffsetDeleteRequest,
    "DeleteRecordsResponse", 2 => DeleteRecordsRequest,
    "SaslHandshakeResponse", 1 => SaslHandshakeRequest,
    "SaslAuthenticateResponse", 2 => SaslAuthenticateRequest,
    "FetchResponse", 12 => FetchRequest,
}

/// Decodes a Fetch v12 response frame and then every partition's records, as the consumer's
/// fetch task does, each partition read from `fetch_offset`.
pub fn decode_fetch(
    frame: &[u8],
    fetch_offset: i64,
    check_crc: bool,
    read_committed: bool,
) -> std::result::Result<Vec<Decoded>, String> {
    let response = crate::wire::decode_response::<kafka_protocol::messages::FetchRequest>(
        "fuzz",
        Bytes::copy_from_slice(frame),
        12,
    )
    .map_err(|e| e.to_string())?;
    let topic: Arc<str> = Arc::from("fuzz");
    let mut out = Vec::new();
    for t in response.responses {
        for p in t.partitions {
            let aborted: Vec<records::Aborted> = p
                .aborted_transactions
                .unwrap_or_default()
                .iter()
                .map(|a| records::Aborted {
                    producer_id: a.producer_id.0,
                    first_offset: a.first_offset,
                })
                .collect();
            if let Some(data) = &p.records {
                out.push(
                    records::decode(
                        &topic,
                        p.partition_index,
                        data,
                        fetch_offset,
                        &aborted,
                        records::Options {
                            check_crc,
                            read_committed,
                        },
                    )
                    .into(),
                );
            }
        }
    }
    Ok(out)
}

/// Reads every setting a client derives from `config`, as `Consumer::connect` and the
/// connection pool do before any network I/O; returns their Debug text.
pub fn derive_settings(config: &ClientConfig) -> Result<String> {
    let brokers = crate::wire::pool::Brokers::new(config)?;
    Ok(format!(
        "{brokers:?} group={:?} instance={:?} assignors={:?} auto_commit={} every={:?} \
         session={:?} heartbeat={:?} poll={:?} reset={} committed={} crc={} records={} \
         fetch=({},{},{:?},{}) deadline={:?} backoff=({:?},{:?})",
        config.group_id(),
        config.group_instance_id(),
        config.assignors(),
        config.auto_commit(),
        config.auto_commit_interval(),
        config.session_timeout(),
        config.heartbeat_interval(),
        config.max_poll_interval(),
        config.offset_reset(),
        config.read_committed(),
        config.check_crcs(),
        config.max_poll_records(),
        config.int32("fetch.min.bytes"),
        config.int32("fetch.max.bytes"),
        config.duration_ms("fetch.max.wait.ms"),
        config.int32("max.partition.fetch.bytes"),
        config.request_timeout() + config.duration_ms("fetch.max.wait.ms"),
        config.duration_ms("retry.backoff.ms"),
        config.duration_ms("retry.backoff.max.ms"),
    ))
}
