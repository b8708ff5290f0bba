//! `tracing` subscriber plus an optional OpenTelemetry span pipeline.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::Error;

/// Where spans go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exporter {
    /// Nowhere: `tracing` logs only.
    #[default]
    None,
    /// Printed to stdout (for development).
    Stdout,
    /// OTLP over HTTP/protobuf, e.g. `http://127.0.0.1:4318/v1/traces`.
    Otlp {
        /// The collector's traces endpoint.
        endpoint: String,
    },
}

/// How to set up logs and traces.
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// `service.name` of exported spans.
    pub service_name: String,
    /// Log filter in `RUST_LOG` syntax; `RUST_LOG` itself wins when set. Default `info`.
    pub filter: String,
    /// One JSON object per log line instead of human-readable lines.
    pub json: bool,
    /// Where spans are exported.
    pub exporter: Exporter,
}

impl Default for TracingConfig {
    fn default() -> TracingConfig {
        TracingConfig {
            service_name: "gregor".into(),
            filter: "info".into(),
            json: false,
            exporter: Exporter::None,
        }
    }
}

/// Flushes and shuts down the span pipeline when dropped (keep it alive for the program's life).
#[derive(Debug)]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing traces failed: {e}");
        }
    }
}

/// Installs the global `tracing` subscriber (logs to stderr) and, unless the exporter is
/// [`Exporter::None`], an OpenTelemetry layer and the W3C trace-context propagator.
/// Call once, from `main`.
pub fn init_tracing(config: &TracingConfig) -> Result<TracingGuard, Error> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .map_err(|e| Error::Tracing(format!("log filter {:?}: {e}", config.filter)))?;
    let provider = match &config.exporter {
        Exporter::None => None,
        Exporter::Stdout => Some(
            SdkTracerProvider::builder()
                .with_resource(resource(&config.service_name))
                .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                .build(),
        ),
        Exporter::Otlp { endpoint } => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| Error::Tracing(format!("OTLP exporter for {endpoint}: {e}")))?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource(&config.service_name))
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("gregor")));
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = if config.json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    installed.map_err(|e| Error::Tracing(format!("a global subscriber is already set: {e}")))?;
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    Ok(TracingGuard { provider })
}

fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .build()
}
