//! Configuration: Kafka properties from a file, then `KAFKA_*` environment variables, then
//! `-X key=value` flags, then the dedicated flags (later wins).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use gregor::client::ClientConfig;
use gregor::codec::{AvroCodec, AvroConfig, CodecConfig, CodecRegistry, HttpRegistry, JsonCodec};
use gregor::event::Event;
use gregor::telemetry::{Exporter, TracingConfig};

/// `file` (Java .properties), then `KAFKA_*` variables, then `-X` pairs.
pub(crate) fn client_config(file: Option<&PathBuf>, pairs: &[String]) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    if let Some(path) = file {
        config = config.with_file(path)?;
    }
    config = config.with_env()?;
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("-X {pair:?}: expected KEY=VALUE, e.g. -X linger.ms=10");
        };
        config = config.set(k.trim(), v.trim())?;
    }
    Ok(config)
}

/// The payload format for topics without a rule in the codec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// The JSON Event envelope.
    Json,
    /// The Avro Event envelope with the Confluent framing (needs a schema registry).
    Avro,
}

/// Codecs per topic: the `--codecs` file when given (its registry URL replaced by
/// `--schema-registry-url` when that is set), else `format` for every topic.
pub(crate) fn codecs(
    file: Option<&PathBuf>,
    format: Format,
    registry_url: Option<&str>,
) -> Result<CodecRegistry<Event>> {
    if let Some(path) = file {
        let mut config = CodecConfig::from_file(path)?;
        if let Some(url) = registry_url
            && let Some(r) = &mut config.schema_registry
        {
            r.url = url.to_owned();
        }
        return Ok(CodecRegistry::from_config(
            &config,
            Some(gregor::event::avro::EVENT),
        )?);
    }
    Ok(match format {
        Format::Json => CodecRegistry::new().default_codec(Arc::new(JsonCodec::new())),
        Format::Avro => {
            let Some(url) = registry_url else {
                bail!("--format avro needs --schema-registry-url (or SCHEMA_REGISTRY_URL)");
            };
            let registry =
                Arc::new(HttpRegistry::new(url).with_context(|| format!("schema registry {url}"))?);
            let codec = AvroCodec::<Event>::for_type(registry, AvroConfig::default())?;
            CodecRegistry::new().default_codec(Arc::new(codec))
        }
    })
}

/// `none`, `stdout`, or an OTLP/HTTP traces endpoint.
pub(crate) fn tracing_config(service: &str, traces: &str) -> TracingConfig {
    let exporter = match traces {
        "" | "none" => Exporter::None,
        "stdout" => Exporter::Stdout,
        url => Exporter::Otlp {
            endpoint: url.to_owned(),
        },
    };
    TracingConfig {
        service_name: service.to_owned(),
        exporter,
        ..TracingConfig::default()
    }
}
