//! Avro with the Confluent wire format, on apache-avro's serde path, with every schema id and
//! parsed schema cached so that a warmed-up codec asks the registry nothing per record.
//!
//! ```text
//! encode: topic ─▶ writer cache (topic → id, schema) ─miss─▶ registry: register | lookup | latest
//!               └▶ 0x00 | id | serde ──SchemaAwareSerializer──▶ datum
//!
//! decode: 0x00 | id | datum ─▶ plan cache (id → plan) ─miss─▶ registry: GET /schemas/ids/{id}
//!            plan Fast:    writer schema == reader schema  → serde straight from the bytes
//!            plan Resolve: an older/newer writer schema    → decode to Value, resolve, from_value
//! ```
//!
//! apache-avro 0.22's `GenericDatumReader::read_deser` panics when a reader schema is set, so
//! it is never called with one: the fast path uses a reader built from one schema only, and
//! schema resolution goes through `read_value` (which resolves, and returns errors).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::reader::single_object::GenericSingleObjectReader;
use apache_avro::schema::ResolvedSchema;
use gregor_event::{Event, Headers, OrderEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{BoxFuture, Codec, Context, Deserializer, Serializer};
use crate::error::{Error, Location, Result};
use crate::fastwrite::Compiled;
use crate::prescan::Shapes;
use crate::registry::{RegistryClient, RegistryError};
use crate::wire;

/// Largest single allocation apache-avro may make while decoding (a string, bytes, or an array
/// or map block), set process-wide by the first Avro codec unless the application set
/// `apache_avro::util::max_allocation_bytes` before. A datum declaring more is an
/// [`Error::Avro`], not an allocation. Kafka's default `message.max.bytes` is 1 MiB.
pub const DEFAULT_MAX_ALLOCATION_BYTES: usize = 16 << 20;

/// How long an id the registry said it does not know is answered from memory, so a stream of
/// records with a bogus id does not become a stream of registry requests.
const UNKNOWN_ID_TTL: Duration = Duration::from_secs(30);

/// Which subject a topic's schema lives under (Confluent's `*.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectNameStrategy {
    /// `<topic>-value` / `<topic>-key` (Confluent's default, `TopicNameStrategy`).
    #[default]
    TopicName,
    /// The record's full name, e.g. `dev.gregor.events.OrderEvent` (`RecordNameStrategy`).
    RecordName,
    /// `<topic>-<record full name>` (`TopicRecordNameStrategy`).
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for `topic` and the record named `record`.
    pub fn subject(self, topic: &str, record: &str, key: bool) -> String {
        match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record.to_owned(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{record}"),
        }
    }
}

/// How an [`AvroCodec`] finds the schema id it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvroConfig {
    /// Subject naming; default [`SubjectNameStrategy::TopicName`].
    pub subject_strategy: SubjectNameStrategy,
    /// Register the codec's schema under the subject (= `auto.register.schemas`, default true).
    /// Off: the schema must already be registered, and is looked up.
    pub auto_register: bool,
    /// Write with the subject's latest version instead of the codec's own schema
    /// (= `use.latest.version`, default false). Takes precedence over `auto_register`.
    pub use_latest_version: bool,
}

impl Default for AvroConfig {
    fn default() -> AvroConfig {
        AvroConfig {
            subject_strategy: SubjectNameStrategy::TopicName,
            auto_register: true,
            use_latest_version: false,
        }
    }
}

/// A Rust type with a shipped Avro schema.
pub trait AvroRecord {
    /// The schema text (`.avsc`).
    const SCHEMA: &'static str;
}

impl AvroRecord for OrderEvent {
    const SCHEMA: &'static str = gregor_event::avro::ORDER_EVENT;
}

impl AvroRecord for Event {
    const SCHEMA: &'static str = gregor_event::avro::EVENT;
}

/// A schema parsed once: its text as registered, its canonical form (equality), its name.
#[derive(Debug)]
struct Parsed {
    text: String,
    canonical: String,
    name: String,
    schema: Schema,
}

impl Parsed {
    fn new(text: &str, what: impl Fn() -> String) -> Result<Parsed> {
        let schema = Schema::parse_str(text).map_err(|e| Error::Schema {
            what: what(),
            detail: e.to_string(),
        })?;
        let name = match &schema {
            Schema::Record(r) => r.name.fullname(None),
            other => {
                return Err(Error::Schema {
                    what: what(),
                    detail: format!(
                        "is a {:?}, not a record",
                        apache_avro::schema::SchemaKind::from(other)
                    ),
                });
            }
        };
        // Registered compact: the registry compares canonically, this only saves bytes.
        let text = serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| text.to_owned());
        Ok(Parsed {
            text,
            canonical: schema.canonical_form(),
            name,
            schema,
        })
    }
}

/// How records of one writer schema id are decoded.
enum ReadPlan {
    /// Writer schema equals the reader's, and compiles: gregor's compiled reader.
    Compiled(Compiled),
    /// Writer schema equals the reader's: apache-avro's serde reader straight from the bytes,
    /// after the bounded check of the datum against the schema.
    Fast {
        reader: GenericSingleObjectReader,
        shapes: Shapes,
    },
    /// Another version: the bounded check of the datum against the writer schema, then
    /// apache-avro decodes with the writer schema and resolves to the reader's.
    Resolve {
        writer: Schema,
        shapes: Shapes,
        reader: Arc<Parsed>,
    },
}

impl std::fmt::Debug for ReadPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadPlan::Compiled(_) => f.write_str("Compiled"),
            ReadPlan::Fast { .. } => f.write_str("Fast"),
            ReadPlan::Resolve { writer, .. } => write!(f, "Resolve({})", writer.canonical_form()),
        }
    }
}

fn fast_plan(schema: &Schema, what: impl Fn() -> String) -> Result<ReadPlan> {
    if let Some(compiled) = Compiled::new(schema) {
        return Ok(ReadPlan::Compiled(compiled));
    }
    let shapes = Shapes::new(schema).map_err(|detail| Error::Schema {
        what: what(),
        detail,
    })?;
    GenericSingleObjectReader::builder()
        .schema(schema.clone())
        // No single-object header: the Confluent header was consumed already.
        .header(Vec::new())
        .human_readable(false)
        .build()
        .map(|reader| ReadPlan::Fast { reader, shapes })
        .map_err(|e| Error::Schema {
            what: what(),
            detail: e.to_string(),
        })
}

/// Decodes one datum with a plan. Never panics: every failure is an [`Error`].
fn decode_datum<T: DeserializeOwned>(
    plan: &ReadPlan,
    id: u32,
    datum: &[u8],
    at: &dyn Fn() -> Location,
) -> Result<T> {
    let avro = |e: apache_avro::Error| Error::Avro {
        at: at(),
        schema_id: id,
        detail: e.to_string(),
    };
    let bounded = |shapes: &Shapes| {
        // apache-avro allocates what a length declares before reading the bytes: every
        // length is checked against the bytes left first (see `prescan`).
        shapes.check(&mut &datum[..]).map_err(|detail| Error::Avro {
            at: at(),
            schema_id: id,
            detail: format!("{detail} (checked against the writer schema)"),
        })
    };
    let mut rest = datum;
    let value = match plan {
        ReadPlan::Compiled(c) => {
            crate::fastread::read::<T>(c, &mut rest).map_err(|e| Error::Avro {
                at: at(),
                schema_id: id,
                detail: e.0,
            })?
        }
        ReadPlan::Fast { reader, shapes } => {
            bounded(shapes)?;
            reader.read_deser::<T>(&mut rest).map_err(avro)?
        }
        ReadPlan::Resolve {
            writer,
            shapes,
            reader,
        } => {
            bounded(shapes)?;
            let decoder = GenericDatumReader::builder(writer)
                .reader_schema(&reader.schema)
                .human_readable(false)
                .build()
                .map_err(|e| Error::Resolution {
                    at: at(),
                    schema_id: id,
                    reader: reader.name.clone(),
                    detail: e.to_string(),
                })?;
            let value = decoder.read_value(&mut rest).map_err(avro)?;
            apache_avro::from_value::<T>(&value).map_err(avro)?
        }
    };
    if !rest.is_empty() {
        return Err(Error::TrailingBytes {
            at: at(),
            schema_id: id,
            extra: rest.len(),
        });
    }
    Ok(value)
}

/// A writer schema with its named types resolved, ready for the serde serializer.
#[derive(Debug)]
struct WriteSchema {
    root: &'static Schema,
    resolved: ResolvedSchema<'static>,
    /// The compiled writer, when the schema's shapes allow it (see `fastwrite`).
    compiled: Option<Compiled>,
}

impl WriteSchema {
    fn new(parsed: &Parsed) -> Result<WriteSchema> {
        let root = intern(&parsed.text, &parsed.schema);
        let resolved = ResolvedSchema::new(root).map_err(|e| Error::Schema {
            what: parsed.name.clone(),
            detail: e.to_string(),
        })?;
        Ok(WriteSchema {
            root,
            resolved,
            compiled: Compiled::new(root),
        })
    }
}

/// Writer schemas live for the whole process: apache-avro's serializer borrows the schema and
/// its resolved names, and keeping both in one owned value would need a self-referential type
/// (apache-avro's own is private). Each distinct schema text is kept once, whatever the number
/// of codecs; only writer schemas come here (the codec's own, and a subject's latest version
/// with `use_latest_version`), so the set is bounded by the configuration, not by the data.
fn intern(text: &str, schema: &Schema) -> &'static Schema {
    static INTERNED: OnceLock<Mutex<HashMap<String, &'static Schema>>> = OnceLock::new();
    let mut map = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = map.get(text) {
        return s;
    }
    let leaked: &'static Schema = Box::leak(Box::new(schema.clone()));
    map.insert(text.to_owned(), leaked);
    leaked
}

/// What is written for one topic: the id and the schema to write with.
#[derive(Debug)]
struct Writer {
    id: u32,
    schema: Arc<WriteSchema>,
}

/// Avro for `T` with the Confluent wire format and a schema registry.
///
/// Build one per payload type and share it: its caches (subject → id, id → decode plan) fill
/// on first use or in [`AvroCodec::prepare`], after which encoding and decoding make no
/// registry request at all.
pub struct AvroCodec<T> {
    registry: Arc<dyn RegistryClient>,
    config: AvroConfig,
    reader: Arc<Parsed>,
    own: Arc<WriteSchema>,
    fast: Arc<ReadPlan>,
    value_writers: RwLock<HashMap<String, Arc<Writer>>>,
    key_writers: RwLock<HashMap<String, Arc<Writer>>>,
    plans: RwLock<HashMap<u32, Arc<ReadPlan>>>,
    unknown: Mutex<HashMap<u32, Instant>>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for AvroCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroCodec")
            .field("record", &self.reader.name)
            .field("config", &self.config)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl<T: AvroRecord + Serialize + DeserializeOwned> AvroCodec<T> {
    /// A codec for a type with a shipped schema ([`AvroRecord`]).
    pub fn for_type(registry: Arc<dyn RegistryClient>, config: AvroConfig) -> Result<AvroCodec<T>> {
        AvroCodec::new(registry, T::SCHEMA, config)
    }
}

impl<T: Serialize + DeserializeOwned> AvroCodec<T> {
    /// A codec writing and reading `T` with the record schema `schema` (`.avsc` text).
    ///
    /// Sets apache-avro's process-wide allocation limit to [`DEFAULT_MAX_ALLOCATION_BYTES`]
    /// unless it was set before, and fails if apache-avro was switched to human-readable serde
    /// (the money and timestamp encodings need the binary form).
    pub fn new(
        registry: Arc<dyn RegistryClient>,
        schema: &str,
        config: AvroConfig,
    ) -> Result<AvroCodec<T>> {
        apache_avro::util::max_allocation_bytes(DEFAULT_MAX_ALLOCATION_BYTES);
        if apache_avro::util::set_serde_human_readable(false) {
            return Err(Error::Config {
                key: "apache_avro::util::set_serde_human_readable".into(),
                reason: "was set to true; gregor's Avro encodings need false".into(),
            });
        }
        let reader = Arc::new(Parsed::new(schema, || "given to AvroCodec::new".into())?);
        let own = Arc::new(WriteSchema::new(&reader)?);
        let fast = Arc::new(fast_plan(&reader.schema, || reader.name.clone())?);
        Ok(AvroCodec {
            registry,
            config,
            reader,
            own,
            fast,
            value_writers: RwLock::new(HashMap::new()),
            key_writers: RwLock::new(HashMap::new()),
            plans: RwLock::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            _type: PhantomData,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AvroConfig {
        &self.config
    }

    /// The reader (and default writer) schema.
    pub fn schema(&self) -> &Schema {
        &self.reader.schema
    }

    /// The record's full name (`dev.gregor.events.OrderEvent`).
    pub fn record_name(&self) -> &str {
        &self.reader.name
    }

    /// The subject this codec writes to for `topic`.
    pub fn subject(&self, topic: &str, key: bool) -> String {
        self.config
            .subject_strategy
            .subject(topic, &self.reader.name, key)
    }

    /// Registers or looks up the schema of every topic's value subject now, so that a refused
    /// or missing schema fails the service at startup ([`Error::Incompatible`],
    /// [`Error::NotRegistered`]) rather than on its first record.
    pub async fn prepare(&self, topics: &[&str]) -> Result<()> {
        for topic in topics {
            self.writer(&Context::new(topic)).await?;
        }
        Ok(())
    }

    /// Encodes `value` for `ctx`: the Confluent header and the Avro datum.
    pub async fn encode(&self, ctx: &Context<'_>, value: &T) -> Result<Vec<u8>> {
        let writer = match self.cached_writer(ctx) {
            Some(w) => w,
            None => self.writer(ctx).await?,
        };
        encode_with(&writer, ctx, value)
    }

    /// Decodes a Confluent-framed payload read from `ctx`.
    pub async fn decode(&self, ctx: &Context<'_>, payload: &[u8]) -> Result<T> {
        let (id, datum) = wire::parse(payload, || ctx.location())?;
        let cached = self
            .plans
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        let plan = match cached {
            Some(plan) => plan,
            None => self.plan(id, ctx).await?,
        };
        decode_datum(&plan, id, datum, &|| ctx.location())
    }

    fn writers(&self, key: bool) -> &RwLock<HashMap<String, Arc<Writer>>> {
        if key {
            &self.key_writers
        } else {
            &self.value_writers
        }
    }

    fn cached_writer(&self, ctx: &Context<'_>) -> Option<Arc<Writer>> {
        self.writers(ctx.key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ctx.topic)
            .cloned()
    }

    /// Finds (registering or looking up) the id to write for `ctx`'s subject and caches it.
    async fn writer(&self, ctx: &Context<'_>) -> Result<Arc<Writer>> {
        if let Some(w) = self.cached_writer(ctx) {
            return Ok(w);
        }
        let subject = self.subject(ctx.topic, ctx.key);
        let incompatible = |e: RegistryError| match e.status() {
            Some(409) => Error::Incompatible {
                subject: subject.clone(),
                message: match &e.kind {
                    crate::registry::RegistryErrorKind::Status { message, .. } => message.clone(),
                    _ => e.to_string(),
                },
            },
            Some(422) => Error::Schema {
                what: format!("for subject {subject}"),
                detail: e.to_string(),
            },
            _ => Error::Registry(e),
        };
        let writer = if self.config.use_latest_version {
            let latest =
                self.registry
                    .latest(&subject)
                    .await?
                    .ok_or_else(|| Error::NotRegistered {
                        subject: subject.clone(),
                        what: "no version is registered (use_latest_version is on)".into(),
                    })?;
            let parsed = Parsed::new(&latest.schema, || {
                format!("{subject} version {} (id {})", latest.version, latest.id)
            })?;
            let schema = if parsed.canonical == self.reader.canonical {
                Arc::clone(&self.own)
            } else {
                Arc::new(WriteSchema::new(&parsed)?)
            };
            Writer {
                id: latest.id,
                schema,
            }
        } else if self.config.auto_register {
            let id = self
                .registry
                .register(&subject, &self.reader.text)
                .await
                .map_err(incompatible)?;
            Writer {
                id,
                schema: Arc::clone(&self.own),
            }
        } else {
            let found = self
                .registry
                .lookup(&subject, &self.reader.text)
                .await?
                .ok_or_else(|| Error::NotRegistered {
                    subject: subject.clone(),
                    what: format!(
                        "schema {} is not registered (auto_register is off)",
                        self.reader.name
                    ),
                })?;
            Writer {
                id: found.id,
                schema: Arc::clone(&self.own),
            }
        };
        tracing::debug!(
            subject,
            id = writer.id,
            topic = ctx.topic,
            "Avro writer schema resolved"
        );
        let writer = Arc::new(writer);
        self.writers(ctx.key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ctx.topic.to_owned(), Arc::clone(&writer));
        Ok(writer)
    }

    /// Fetches the writer schema of `id` and builds (and caches) its decode plan.
    async fn plan(&self, id: u32, ctx: &Context<'_>) -> Result<Arc<ReadPlan>> {
        {
            let mut unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
            match unknown.get(&id) {
                Some(when) if when.elapsed() < UNKNOWN_ID_TTL => {
                    return Err(Error::UnknownSchemaId {
                        at: ctx.location(),
                        id,
                    });
                }
                Some(_) => {
                    unknown.remove(&id);
                }
                None => {}
            }
        }
        let text = match self.registry.schema_by_id(id).await {
            Ok(text) => text,
            Err(e) if e.status() == Some(404) => {
                let mut unknown = self.unknown.lock().unwrap_or_else(PoisonError::into_inner);
                // Bounded: a flood of distinct bogus ids cannot grow this without limit.
                if unknown.len() >= 10_000 {
                    unknown.clear();
                }
                unknown.insert(id, Instant::now());
                return Err(Error::UnknownSchemaId {
                    at: ctx.location(),
                    id,
                });
            }
            Err(e) => return Err(Error::Registry(e)),
        };
        let writer = Parsed::new(&text, || format!("id {id}"))?;
        let plan = if writer.canonical == self.reader.canonical {
            Arc::clone(&self.fast)
        } else {
            Arc::new(ReadPlan::Resolve {
                shapes: Shapes::new(&writer.schema).map_err(|detail| Error::Schema {
                    what: format!("id {id}"),
                    detail,
                })?,
                writer: writer.schema,
                reader: Arc::clone(&self.reader),
            })
        };
        tracing::debug!(id, plan = ?plan, "Avro read plan cached");
        self.plans
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&plan));
        Ok(plan)
    }
}

fn encode_with<T: Serialize>(writer: &Writer, ctx: &Context<'_>, value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    wire::write_header(&mut buf, writer.id);
    if let Some(compiled) = &writer.schema.compiled {
        if compiled.write(value, &mut buf).is_ok() {
            return Ok(buf);
        }
        // A shape the compiled writer does not handle: apache-avro writes it (or says why not).
        buf.truncate(wire::HEADER_LEN);
    }
    apache_avro::writer::datum::write_avro_datum_ref(
        writer.schema.root,
        writer.schema.resolved.get_names(),
        value,
        &mut buf,
    )
    .map_err(|e| Error::Serialize {
        at: ctx.location(),
        detail: e.to_string(),
    })?;
    Ok(buf)
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Serializer<T> for AvroCodec<T> {
    fn serialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        _headers: &'a mut Headers,
        value: &'a T,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(self.encode(ctx, value))
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Deserializer<T> for AvroCodec<T> {
    fn deserialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        _headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<T>> {
        Box::pin(self.decode(ctx, payload))
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Codec<T> for AvroCodec<T> {
    fn name(&self) -> &str {
        "avro"
    }

    fn prepare<'a>(&'a self, topics: &'a [&'a str]) -> BoxFuture<'a, Result<()>> {
        Box::pin(AvroCodec::prepare(self, topics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::order;
    use proptest::prelude::*;

    fn here() -> Location {
        Location {
            topic: "orders".into(),
            partition: Some(0),
            offset: Some(5),
            key: false,
        }
    }

    fn reader() -> Arc<Parsed> {
        Arc::new(Parsed::new(gregor_event::avro::ORDER_EVENT, || "test".into()).unwrap())
    }

    fn datum(o: &OrderEvent) -> Vec<u8> {
        let w = Writer {
            id: 1,
            schema: Arc::new(WriteSchema::new(&reader()).unwrap()),
        };
        let mut framed = encode_with(&w, &Context::new("orders"), o).unwrap();
        framed.drain(..5);
        framed
    }

    /// The order schema as an older producer wrote it: with a `coupon` field the current
    /// reader no longer has.
    fn old_writer() -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(gregor_event::avro::ORDER_EVENT).unwrap();
        v["fields"].as_array_mut().unwrap().push(serde_json::json!(
            {"name": "coupon", "type": ["null", "string"], "default": null}
        ));
        v.to_string()
    }

    fn plans() -> (ReadPlan, ReadPlan) {
        let r = reader();
        let fast = fast_plan(&r.schema, || "t".into()).unwrap();
        let writer = Schema::parse_str(&old_writer()).unwrap();
        let shapes = Shapes::new(&writer).unwrap();
        (
            fast,
            ReadPlan::Resolve {
                writer,
                shapes,
                reader: r,
            },
        )
    }

    #[test]
    fn fast_and_resolving_paths_agree() {
        let (fast, resolve) = plans();
        let o = order(3);
        let bytes = datum(&o);
        assert_eq!(
            decode_datum::<OrderEvent>(&fast, 1, &bytes, &here).unwrap(),
            o
        );
        // The old writer's datum is the current one plus a union branch for the coupon.
        let mut old = bytes.clone();
        old.extend_from_slice(&[2, 6, b'c', b'p', b'n']);
        assert_eq!(
            decode_datum::<OrderEvent>(&resolve, 2, &old, &here).unwrap(),
            o
        );
        // The same bytes on the fast path leave the coupon behind: a typed error.
        assert!(matches!(
            decode_datum::<OrderEvent>(&fast, 1, &old, &here),
            Err(Error::TrailingBytes { extra: 5, .. })
        ));
    }

    #[test]
    fn huge_declared_lengths_are_errors_not_allocations() {
        let (fast, resolve) = plans();
        // order_id declares 2^40 bytes (zig-zag varint), then nothing.
        let mut huge = Vec::new();
        let mut n: u64 = (1u64 << 40) << 1;
        while n >= 0x80 {
            huge.push((n as u8) | 0x80);
            n >>= 7;
        }
        huge.push(n as u8);
        for plan in [&fast, &resolve] {
            let err = decode_datum::<OrderEvent>(plan, 9, &huge, &here).unwrap_err();
            assert!(matches!(err, Error::Avro { schema_id: 9, .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("topic orders partition 0 offset 5"),
                "{err}"
            );
        }
        // An items array declaring 2^40 elements after two empty strings, a status and amount.
        let mut arr = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut n: u64 = (1u64 << 40) << 1;
        while n >= 0x80 {
            arr.push((n as u8) | 0x80);
            n >>= 7;
        }
        arr.push(n as u8);
        for plan in [&fast, &resolve] {
            assert!(decode_datum::<OrderEvent>(plan, 9, &arr, &here).is_err());
        }
        // A negative length.
        for plan in [&fast, &resolve] {
            assert!(decode_datum::<OrderEvent>(plan, 9, &[1], &here).is_err());
        }
    }

    #[test]
    fn truncated_datums_fail_at_every_cut() {
        let (fast, resolve) = plans();
        let bytes = datum(&order(3));
        for cut in 0..bytes.len() {
            assert!(
                decode_datum::<OrderEvent>(&fast, 1, &bytes[..cut], &here).is_err(),
                "fast cut {cut}"
            );
            assert!(
                decode_datum::<OrderEvent>(&resolve, 1, &bytes[..cut], &here).is_err(),
                "resolve cut {cut}"
            );
        }
    }

    #[test]
    fn apache_avro_fast_reader_agrees_where_not_compiled() {
        let r = reader();
        let apache = ReadPlan::Fast {
            reader: GenericSingleObjectReader::builder()
                .schema(r.schema.clone())
                .header(Vec::new())
                .human_readable(false)
                .build()
                .unwrap(),
            shapes: Shapes::new(&r.schema).unwrap(),
        };
        let bytes = datum(&order(3));
        assert_eq!(
            decode_datum::<OrderEvent>(&apache, 1, &bytes, &here).unwrap(),
            order(3)
        );
        assert!(matches!(
            fast_plan(&r.schema, || "t".into()).unwrap(),
            ReadPlan::Compiled(_)
        ));
    }

    #[test]
    fn gregor_events_take_the_compiled_writer() {
        assert!(WriteSchema::new(&reader()).unwrap().compiled.is_some());
        let event = Parsed::new(gregor_event::avro::EVENT, || "e".into()).unwrap();
        assert!(WriteSchema::new(&event).unwrap().compiled.is_some());
    }

    #[test]
    fn subject_names() {
        let s = SubjectNameStrategy::TopicName;
        assert_eq!(s.subject("orders", "a.B", false), "orders-value");
        assert_eq!(s.subject("orders", "a.B", true), "orders-key");
        assert_eq!(
            SubjectNameStrategy::RecordName.subject("orders", "a.B", false),
            "a.B"
        );
        assert_eq!(
            SubjectNameStrategy::TopicRecordName.subject("orders", "a.B", true),
            "orders-a.B"
        );
    }

    #[test]
    fn non_record_schemas_are_refused() {
        assert!(matches!(
            Parsed::new(r#""string""#, || "x".into()),
            Err(Error::Schema { .. })
        ));
        assert!(matches!(
            Parsed::new("{not json", || "x".into()),
            Err(Error::Schema { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_bytes_never_panic_either_avro_path(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (fast, resolve) = plans();
            let _ = decode_datum::<OrderEvent>(&fast, 1, &bytes, &here);
            let _ = decode_datum::<OrderEvent>(&resolve, 1, &bytes, &here);
            let _ = decode_datum::<Event>(&fast_plan(&Schema::parse_str(gregor_event::avro::EVENT).unwrap(), || "e".into()).unwrap(), 1, &bytes, &here);
        }

        #[test]
        fn mutated_datums_never_panic(pos in 0usize..1000, byte in any::<u8>(), cut in 0usize..1000) {
            let (fast, resolve) = plans();
            let mut bytes = datum(&order(3));
            let i = pos % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut.max(1));
            let _ = decode_datum::<OrderEvent>(&fast, 1, &bytes, &here);
            let _ = decode_datum::<OrderEvent>(&resolve, 1, &bytes, &here);
        }
    }
}
