//! Payload codecs of `produce`, `consume` and `dlq`: text, JSON, and Avro through a schema
//! registry (Confluent framing), with gregor-codec's registry client and wire format.
//!
//! Avro goes through apache-avro's generic `Value` (the CLI has no Rust type for the records):
//! JSON in, resolved against the schema file, out as a datum; and back, with the writer schema
//! fetched by the id in the record's header (each id once).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use gregor_codec::registry::RegistryClient;
use gregor_codec::{HttpRegistry, Location, SubjectNameStrategy};
use serde_json::{Value, json};

use crate::{CliResult, Failure};

/// How values are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CodecKind {
    /// Read: Avro when a record starts with the Confluent magic byte and a registry is known,
    /// JSON when it parses as an object or array, text when it is UTF-8, else base64.
    Auto,
    /// UTF-8 text, sent as is (alias: raw).
    #[value(alias = "raw")]
    String,
    /// JSON: checked on produce, parsed on consume.
    Json,
    /// Avro with the Confluent wire format (magic byte, schema id, datum) and a registry.
    Avro,
}

/// `--subject-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Strategy {
    /// TOPIC-value (Confluent's default).
    #[value(name = "topic-name")]
    Topic,
    /// The record's full name.
    #[value(name = "record-name")]
    Record,
    /// TOPIC-RECORD_FULL_NAME.
    #[value(name = "topic-record-name")]
    TopicRecord,
}

impl From<Strategy> for SubjectNameStrategy {
    fn from(s: Strategy) -> SubjectNameStrategy {
        match s {
            Strategy::Topic => SubjectNameStrategy::TopicName,
            Strategy::Record => SubjectNameStrategy::RecordName,
            Strategy::TopicRecord => SubjectNameStrategy::TopicRecordName,
        }
    }
}

/// Registry options shared by the commands that read or write Avro.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Schema registry URL (Confluent API; for Apicurio: http://HOST:PORT/apis/ccompat/v7).
    /// Default: GREGOR_SCHEMA_REGISTRY_URL, else the registry of `gregor dev up`.
    #[arg(long, value_name = "URL", env = "GREGOR_SCHEMA_REGISTRY_URL")]
    pub(crate) registry: Option<String>,
}

impl RegistryArgs {
    /// The registry URL if one is known (flag, environment, local registry).
    fn url(&self) -> Option<String> {
        self.registry
            .clone()
            .or_else(|| gregor_testkit::registry::registry_state().map(|s| s.url))
    }

    fn client(&self) -> CliResult<Option<Arc<HttpRegistry>>> {
        let Some(url) = self.url() else {
            return Ok(None);
        };
        let client = HttpRegistry::new(&url)
            .map_err(|e| Failure::usage(anyhow!("--registry {url}: {e}")))?;
        Ok(Some(Arc::new(client)))
    }
}

/// Avro options of `produce`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AvroArgs {
    /// The Avro schema (.avsc) the values are written with (--codec avro).
    #[arg(long, value_name = "FILE")]
    pub(crate) schema: Option<PathBuf>,
    /// Subject naming (Confluent's *.subject.name.strategy).
    #[arg(long, value_enum, default_value = "topic-name")]
    pub(crate) subject_strategy: Strategy,
    /// Do not register the schema: it must already be registered under the subject.
    #[arg(long)]
    pub(crate) no_register: bool,
}

/// A value as it comes from an input line: text, or JSON from a JSON line.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Text(String),
    Json(Value),
}

/// Writes values for one topic.
#[derive(Debug)]
pub(crate) enum Encoder {
    Text,
    Json,
    Avro { schema: Box<Schema>, id: u32 },
}

impl Encoder {
    /// Builds the encoder; Avro registers (or looks up) the schema under the topic's subject.
    pub(crate) async fn new(
        kind: CodecKind,
        topic: &str,
        registry: &RegistryArgs,
        avro: &AvroArgs,
    ) -> CliResult<Encoder> {
        match kind {
            CodecKind::Auto | CodecKind::String => Ok(Encoder::Text),
            CodecKind::Json => Ok(Encoder::Json),
            CodecKind::Avro => {
                let path = avro.schema.as_ref().ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--codec avro needs --schema FILE (the .avsc the values are written with)"
                    ))
                })?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(anyhow!("--schema {}: {e}", path.display())))?;
                let schema = Schema::parse_str(&text).map_err(|e| {
                    Failure::usage(anyhow!(
                        "--schema {}: not an Avro schema: {e}",
                        path.display()
                    ))
                })?;
                let record = schema
                    .name()
                    .map(|n| n.fullname(None))
                    .unwrap_or_else(|| "value".to_owned());
                let client = registry.client()?.ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--codec avro needs a schema registry: pass --registry URL, set \
                         GREGOR_SCHEMA_REGISTRY_URL, or start one with `gregor dev up`"
                    ))
                })?;
                let subject =
                    SubjectNameStrategy::from(avro.subject_strategy).subject(topic, &record, false);
                let id = if avro.no_register {
                    client
                        .lookup(&subject, &text)
                        .await
                        .with_context(|| format!("looking up the schema under subject {subject}"))?
                        .ok_or_else(|| {
                            Failure::usage(anyhow!(
                                "the schema in {} is not registered under subject {subject}: \
                                 register it or drop --no-register",
                                path.display()
                            ))
                        })?
                        .id
                } else {
                    client.register(&subject, &text).await.with_context(|| {
                        format!("registering the schema under subject {subject}")
                    })?
                };
                Ok(Encoder::Avro {
                    schema: Box::new(schema),
                    id,
                })
            }
        }
    }

    /// The bytes of `payload`; the error says what is wrong with the input.
    pub(crate) fn encode(&self, payload: Payload) -> Result<Vec<u8>, String> {
        match (self, payload) {
            (Encoder::Text, Payload::Text(s)) => Ok(s.into_bytes()),
            (Encoder::Text, Payload::Json(Value::String(s))) => Ok(s.into_bytes()),
            (Encoder::Text, Payload::Json(v)) => Ok(v.to_string().into_bytes()),
            (Encoder::Json, Payload::Text(s)) => {
                serde_json::from_str::<Value>(&s).map_err(|e| format!("value is not JSON: {e}"))?;
                Ok(s.into_bytes())
            }
            (Encoder::Json, Payload::Json(v)) => Ok(v.to_string().into_bytes()),
            (Encoder::Avro { schema, id }, payload) => {
                let json = match payload {
                    Payload::Json(v) => v,
                    Payload::Text(s) => serde_json::from_str(&s)
                        .map_err(|e| format!("value is not JSON (needed for Avro): {e}"))?,
                };
                let value = apache_avro::types::Value::try_from(json)
                    .and_then(|v| v.resolve(schema))
                    .map_err(|e| format!("value does not match the Avro schema: {e}"))?;
                let datum = GenericDatumWriter::builder(schema)
                    .build()
                    .and_then(|w| w.write_value_to_vec(value))
                    .map_err(|e| format!("Avro encoding: {e}"))?;
                let mut out = Vec::with_capacity(datum.len() + gregor_codec::wire::HEADER_LEN);
                gregor_codec::wire::write_header(&mut out, *id);
                out.extend_from_slice(&datum);
                Ok(out)
            }
        }
    }
}

/// Reads values; caches writer schemas by id.
#[derive(Debug)]
pub(crate) struct Decoder {
    kind: CodecKind,
    registry: Option<Arc<HttpRegistry>>,
    schemas: HashMap<u32, Arc<Schema>>,
}

impl Decoder {
    pub(crate) fn new(kind: CodecKind, registry: &RegistryArgs) -> CliResult<Decoder> {
        let client = registry.client()?;
        if kind == CodecKind::Avro && client.is_none() {
            return Err(Failure::usage(anyhow!(
                "--codec avro needs a schema registry: pass --registry URL, set \
                 GREGOR_SCHEMA_REGISTRY_URL, or start one with `gregor dev up`"
            )));
        }
        Ok(Decoder {
            kind,
            registry: client,
            schemas: HashMap::new(),
        })
    }

    /// The value as JSON: decoded JSON or Avro, a string for text, `{"base64": ...}` for
    /// bytes that are not UTF-8. `where_` names the record in errors.
    pub(crate) async fn decode(&mut self, bytes: &[u8], where_: &Location) -> CliResult<Value> {
        let avro_framed =
            bytes.len() >= gregor_codec::wire::HEADER_LEN && bytes[0] == gregor_codec::wire::MAGIC;
        match self.kind {
            CodecKind::Avro => self.avro(bytes, where_).await,
            CodecKind::Json => serde_json::from_slice(bytes)
                .map_err(|e| anyhow!("{where_}: value is not JSON: {e}").into()),
            CodecKind::String => Ok(text_or_base64(bytes)),
            CodecKind::Auto => {
                if avro_framed && self.registry.is_some() {
                    return self.avro(bytes, where_).await;
                }
                let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
                if matches!(first, Some(b'{' | b'['))
                    && let Ok(v) = serde_json::from_slice(bytes)
                {
                    return Ok(v);
                }
                Ok(text_or_base64(bytes))
            }
        }
    }

    async fn avro(&mut self, bytes: &[u8], where_: &Location) -> CliResult<Value> {
        let (id, mut datum) =
            gregor_codec::wire::parse(bytes, || where_.clone()).map_err(|e| anyhow!("{e}"))?;
        let schema = match self.schemas.get(&id) {
            Some(s) => Arc::clone(s),
            None => {
                let registry = self
                    .registry
                    .as_ref()
                    .ok_or_else(|| anyhow!("{where_}: Avro record but no schema registry"))?;
                let text = registry
                    .schema_by_id(id)
                    .await
                    .with_context(|| format!("{where_}: fetching schema id {id}"))?;
                let schema = Arc::new(
                    Schema::parse_str(&text)
                        .with_context(|| format!("{where_}: schema id {id} does not parse"))?,
                );
                self.schemas.insert(id, Arc::clone(&schema));
                schema
            }
        };
        let value = GenericDatumReader::builder(&schema)
            .build()
            .and_then(|r| r.read_value(&mut datum))
            .map_err(|e| anyhow!("{where_}: Avro datum (schema id {id}): {e}"))?;
        Value::try_from(value).map_err(|e| anyhow!("{where_}: Avro value as JSON: {e}").into())
    }
}

/// Text if UTF-8, otherwise `{"base64": "..."}`.
pub(crate) fn text_or_base64(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "base64": base64(bytes) }),
    }
}

/// Standard base64 with padding (RFC 4648), for bytes that are not text.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(text_or_base64(&[0xff, 0x00]), json!({"base64": "/wA="}));
    }

    #[test]
    fn avro_encoding_checks_the_schema() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":["null","string"]}]}"#,
        )
        .unwrap();
        let enc = Encoder::Avro {
            schema: Box::new(schema),
            id: 7,
        };
        let bytes = enc
            .encode(Payload::Json(json!({"a": 1, "b": "x"})))
            .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 7]);
        let err = enc
            .encode(Payload::Json(json!({"a": "not a number"})))
            .unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        let err = enc.encode(Payload::Text("{".into())).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }
}
