//! Ready means a metadata request through rskafka succeeds: never a sleep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::BackoffConfig;
use rskafka::client::{Client, ClientBuilder};

use crate::error::{Error, Result};

/// An rskafka client whose retries end after `deadline` (rskafka retries forever by default).
pub(crate) async fn client(bootstrap: &str, deadline: Duration) -> Result<Client> {
    let brokers = bootstrap.split(',').map(|s| s.trim().to_owned()).collect();
    let build = ClientBuilder::new(brokers)
        .client_id(Arc::from("gregor-testkit"))
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
            deadline: Some(deadline),
        })
        .build();
    match tokio::time::timeout(deadline + Duration::from_secs(1), build).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::Kafka {
            bootstrap: bootstrap.to_owned(),
            detail: e.to_string(),
        }),
        Err(_) => Err(Error::Kafka {
            bootstrap: bootstrap.to_owned(),
            detail: format!("no answer within {deadline:?}"),
        }),
    }
}

/// One metadata round trip (`list_topics`, never served from rskafka's cache).
pub(crate) async fn metadata_ok(bootstrap: &str, deadline: Duration) -> Result<()> {
    let client = client(bootstrap, deadline).await?;
    match tokio::time::timeout(deadline, client.list_topics()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Kafka {
            bootstrap: bootstrap.to_owned(),
            detail: e.to_string(),
        }),
        Err(_) => Err(Error::Kafka {
            bootstrap: bootstrap.to_owned(),
            detail: format!("metadata not answered within {deadline:?}"),
        }),
    }
}

/// Polls until a metadata request to `bootstrap` succeeds. `check` runs before every attempt and
/// ends the wait with its error (the process died); past `timeout` the error comes from `late`.
pub(crate) async fn wait_until_ready(
    bootstrap: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<()>,
    late: impl FnOnce(String) -> Error,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = String::from("no attempt made");
    while start.elapsed() < timeout {
        check()?;
        match metadata_ok(bootstrap, Duration::from_secs(2)).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(late(format!(
        "not ready after {:?} (last attempt: {last})",
        timeout
    )))
}

/// How long a node may take to become ready: generous, since two cores build and test at once.
pub(crate) fn start_timeout() -> Duration {
    std::env::var("GREGOR_KAFKA_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(120))
}
