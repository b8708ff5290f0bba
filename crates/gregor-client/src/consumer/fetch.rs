//! One Fetch request to one broker, run as a task so the next fetch is in flight while the
//! application handles the last one; the task also decodes the record batches, off the
//! application's task.
//!
//! Fetch v12 over gregor's own connection for every topic: kafka-protocol encodes the request
//! and decodes the response after the allocation guard checked it; the records bytes are read
//! by `records::decode` (zstd included, aborted transactions filtered under read_committed).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    BrokerId, FetchRequest, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
};
use kafka_protocol::protocol::StrBytes;

use super::records::{self, Aborted, Decoded, Options};
use crate::error::{Error, KafkaCode};
use crate::wire::Connection;

/// Fetch v12: topic names, flexible encoding, aborted transactions; v13 switches to topic ids.
const FETCH_MAX: i16 = 12;

/// Fetch settings (`fetch.*`, `isolation.level`, `check.crcs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) min_bytes: i32,
    pub(crate) max_bytes: i32,
    pub(crate) max_wait: Duration,
    pub(crate) partition_max_bytes: i32,
    pub(crate) request_timeout: Duration,
    pub(crate) decode: Options,
}

/// A partition to fetch from an offset.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// What came back for one partition.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Records (possibly none) and the partition's offsets as the leader sees them.
    Data {
        decoded: Decoded,
        high_watermark: i64,
        last_stable: i64,
    },
    /// A partition-level error code.
    Error(KafkaCode),
}

/// One partition's part of a fetch.
#[derive(Debug)]
pub(crate) struct PartitionResult {
    pub(crate) spec: Spec,
    pub(crate) outcome: Outcome,
}

/// A finished fetch: per-partition results, or the request's own failure.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) node: i32,
    pub(crate) specs: Vec<Spec>,
    pub(crate) result: Result<Vec<PartitionResult>, Error>,
}

/// Sends one Fetch to `conn` (broker `node`) and decodes what it returns.
pub(crate) async fn run(
    conn: Arc<Connection>,
    node: i32,
    specs: Vec<Spec>,
    s: Settings,
) -> Fetched {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for spec in &specs {
        let partition = FetchPartition::default()
            .with_partition(spec.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(spec.offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(s.partition_max_bytes);
        match topics.iter_mut().find(|t| *t.topic.0 == *spec.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(spec.topic.to_string())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::try_from(s.max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(s.min_bytes)
        .with_max_bytes(s.max_bytes)
        .with_isolation_level(i8::from(s.decode.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let response = conn
        .send_timeout(&request, FETCH_MAX, s.request_timeout + s.max_wait)
        .await;
    let result = response.and_then(|response| {
        if let Some(code) = KafkaCode::from_code(response.error_code) {
            return Err(Error::kafka(
                code,
                crate::error::Context::broker(conn.addr().to_owned()),
                None,
            ));
        }
        let mut out = Vec::with_capacity(specs.len());
        for t in response.responses {
            for p in t.partitions {
                let Some(spec) = specs
                    .iter()
                    .find(|s| *s.topic == *t.topic.0 && s.partition == p.partition_index)
                else {
                    continue; // not asked for
                };
                let outcome = match KafkaCode::from_code(p.error_code) {
                    Some(code) => Outcome::Error(code),
                    None => {
                        let aborted: Vec<Aborted> = p
                            .aborted_transactions
                            .unwrap_or_default()
                            .iter()
                            .map(|a| Aborted {
                                producer_id: a.producer_id.0,
                                first_offset: a.first_offset,
                            })
                            .collect();
                        let decoded = match &p.records {
                            Some(data) => records::decode(
                                &spec.topic,
                                spec.partition,
                                data,
                                spec.offset,
                                &aborted,
                                s.decode,
                            ),
                            None => Decoded::default(),
                        };
                        Outcome::Data {
                            decoded,
                            high_watermark: p.high_watermark,
                            last_stable: p.last_stable_offset,
                        }
                    }
                };
                out.push(PartitionResult {
                    spec: spec.clone(),
                    outcome,
                });
            }
        }
        Ok(out)
    });
    Fetched {
        node,
        specs,
        result,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::FetchRequest;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A Fetch response from anyone is checked against its layout before decoding: any
        /// bytes give a value or an error, never a panic or a wire-driven allocation.
        #[test]
        fn arbitrary_fetch_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = crate::wire::decode_response::<FetchRequest>("fuzz", Bytes::from(bytes), 12);
        }
    }
}
