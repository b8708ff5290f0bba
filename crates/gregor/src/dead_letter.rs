//! The dead-letter publisher for gregor-client's producer.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use gregor_client::{Header, Producer, ProducerRecord};
use gregor_handler::BoxError;
use gregor_handler::dead_letter::{DeadLetterRecord, Publisher};
use gregor_handler::metrics::Metrics;

/// Publishes dead-letter records with a [`Producer`] and waits for each acknowledgement (so the
/// worker commits the original offset only once the record is safely in the dead-letter topic).
///
/// ```no_run
/// # async fn example() -> gregor::Result<()> {
/// use std::sync::Arc;
/// use gregor::client::{ClientConfig, Producer};
/// use gregor::handler::dead_letter::DeadLetterLayer;
/// use gregor::ProducerPublisher;
///
/// let config = ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092")?;
/// let producer = Arc::new(Producer::connect(&config).await?);
/// let dead_letter = DeadLetterLayer::new(Arc::new(ProducerPublisher::new(producer)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ProducerPublisher {
    producer: Arc<Producer>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for ProducerPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerPublisher").finish_non_exhaustive()
    }
}

impl ProducerPublisher {
    /// Publishes with `producer`.
    pub fn new(producer: Arc<Producer>) -> ProducerPublisher {
        ProducerPublisher {
            producer,
            metrics: None,
        }
    }

    /// Counts what it sends in `kafka_messages_produced_total`.
    pub fn metrics(mut self, metrics: Metrics) -> ProducerPublisher {
        self.metrics = Some(metrics);
        self
    }
}

/// The producer record for a dead-letter record.
pub(crate) fn producer_record(record: DeadLetterRecord) -> ProducerRecord {
    let mut out = ProducerRecord::new(record.topic.as_str(), Bytes::new());
    out.value = record.value;
    if let Some(k) = record.key {
        out = out.key(k);
    }
    out.headers = record
        .headers
        .into_iter()
        .map(|h| Header::new(h.key, h.value))
        .collect();
    out
}

impl Publisher for ProducerPublisher {
    fn publish(&self, record: DeadLetterRecord) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            let topic = record.topic.clone();
            let result = self.producer.send(producer_record(record)).await;
            if let Some(m) = &self.metrics {
                m.produced(&topic, result.is_ok());
            }
            result.map(|_| ()).map_err(|e| Box::new(e) as BoxError)
        })
    }
}
