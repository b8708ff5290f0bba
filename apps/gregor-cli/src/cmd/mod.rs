//! One module per command group.

pub(crate) mod consume;
pub(crate) mod dev;
pub(crate) mod dlq;
pub(crate) mod groups;
pub(crate) mod plan;
pub(crate) mod produce;
pub(crate) mod topics;

use anyhow::Context;
use gregor_client::ClientConfig;

use crate::{CliResult, Failure, Global};

/// The client configuration from, in order of precedence: `-X key=value`, `--bootstrap-server`,
/// `--config FILE`, `KAFKA_*` environment variables, and finally the local broker of
/// `gregor dev up` when no bootstrap servers were given at all.
pub(crate) fn client_config(global: &Global) -> CliResult<ClientConfig> {
    let mut config = ClientConfig::new().with_env()?;
    if let Some(file) = &global.config {
        config = config.with_file(file)?;
    }
    if let Some(servers) = &global.bootstrap_server {
        config = config.set("bootstrap.servers", servers.as_str())?;
    }
    for pair in &global.property {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Failure::usage(anyhow::anyhow!("-X {pair:?}: expected KEY=VALUE")))?;
        config = config.set(k, v)?;
    }
    if !config.is_set("bootstrap.servers") {
        let state = gregor_testkit::local_state().ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "no brokers given: pass --bootstrap-server HOST:PORT, set KAFKA_BOOTSTRAP_SERVERS, \
                 or start a local one with `gregor dev up`"
            ))
        })?;
        config = config
            .set("bootstrap.servers", state.bootstrap.as_str())
            .context("the local broker's address")?;
    }
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}
