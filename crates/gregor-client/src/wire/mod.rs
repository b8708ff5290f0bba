//! Our own connection to a broker, for the requests rskafka cannot send (group coordination,
//! offsets, admin), with kafka-protocol's message codecs.
//!
//! ```text
//! request(req) ──▶ encode header+body ──▶ [writer lock] ──▶ socket ──▶ broker
//!      ▲                                                                 │
//!      └── oneshot by correlation id ◀── reader task (one per connection) ◀┘
//! ```
//!
//! Requests are pipelined: many may be in flight on one connection (a heartbeat does not wait
//! behind an offset commit). The reader checks every declared frame length against
//! `max_response_bytes` before allocating. When the socket fails, every waiting request gets
//! the error and the connection is marked dead; the pool opens a new one on next use.

mod guard;
pub(crate) mod pool;
mod schemas;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, KafkaCode, Result};
use crate::security::{Sasl, Security, Stream};

/// Responses larger than this are refused before allocating. gregor's own connection carries
/// metadata, group, offset and admin responses (records go through rskafka); a metadata
/// response for 100,000 partitions is about 4 MiB. Together with the per-array checks of
/// `guard`, this bounds what a hostile frame can make us allocate.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A request gregor sends, with its API key and response type.
///
/// kafka-protocol's own `Request` trait also needs the broker-side decoders; this one needs only
/// what a client uses, so the crate builds without its `broker` feature.
pub(crate) trait Request: Encodable + HeaderVersion + Message {
    /// The API key.
    const KEY: i16;
    /// The response message.
    type Response: Decodable + HeaderVersion + Message;
    /// The response's name, for its layout in `schemas.rs`.
    const RESPONSE: &'static str;
}

macro_rules! requests {
    ($($key:ident: $req:ident => $resp:ident,)*) => {
        $(
            impl Request for kafka_protocol::messages::$req {
                const KEY: i16 = ApiKey::$key as i16;
                type Response = kafka_protocol::messages::$resp;
                const RESPONSE: &'static str = stringify!($resp);
            }
        )*
    };
}

requests! {
    ApiVersions: ApiVersionsRequest => ApiVersionsResponse,
    Metadata: MetadataRequest => MetadataResponse,
    CreateTopics: CreateTopicsRequest => CreateTopicsResponse,
    DeleteTopics: DeleteTopicsRequest => DeleteTopicsResponse,
    CreatePartitions: CreatePartitionsRequest => CreatePartitionsResponse,
    DescribeConfigs: DescribeConfigsRequest => DescribeConfigsResponse,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse,
    ListOffsets: ListOffsetsRequest => ListOffsetsResponse,
    Fetch: FetchRequest => FetchResponse,
    FindCoordinator: FindCoordinatorRequest => FindCoordinatorResponse,
    JoinGroup: JoinGroupRequest => JoinGroupResponse,
    SyncGroup: SyncGroupRequest => SyncGroupResponse,
    Heartbeat: HeartbeatRequest => HeartbeatResponse,
    LeaveGroup: LeaveGroupRequest => LeaveGroupResponse,
    OffsetCommit: OffsetCommitRequest => OffsetCommitResponse,
    OffsetFetch: OffsetFetchRequest => OffsetFetchResponse,
    DescribeGroups: DescribeGroupsRequest => DescribeGroupsResponse,
    ListGroups: ListGroupsRequest => ListGroupsResponse,
    DeleteGroups: DeleteGroupsRequest => DeleteGroupsResponse,
    OffsetDelete: OffsetDeleteRequest => OffsetDeleteResponse,
    DeleteRecords: DeleteRecordsRequest => DeleteRecordsResponse,
    SaslHandshake: SaslHandshakeRequest => SaslHandshakeResponse,
    SaslAuthenticate: SaslAuthenticateRequest => SaslAuthenticateResponse,
}

/// Settings every connection needs.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub(crate) client_id: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// TLS and SASL, the same as the data path's (see `security`).
    pub(crate) security: Security,
}

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>;

/// One pipelined connection to one broker.
pub(crate) struct Connection {
    addr: String,
    writer: tokio::sync::Mutex<WriteHalf<Box<dyn Stream>>>,
    pending: Pending,
    next_correlation: AtomicI32,
    dead: Arc<AtomicBool>,
    versions: HashMap<i16, (i16, i16)>,
    client_id: StrBytes,
    request_timeout: Duration,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("dead", &self.is_dead())
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `addr` (TCP, then TLS if configured), learns which request versions the
    /// broker accepts, and authenticates with SASL if configured.
    pub(crate) async fn connect(addr: &str, opts: &ConnectOptions) -> Result<Connection> {
        let open = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| Error::Connection {
                    broker: addr.to_owned(),
                    message: e.to_string(),
                })?;
            let _ = tcp.set_nodelay(true);
            opts.security.secure(tcp, addr).await
        };
        let stream = tokio::time::timeout(opts.connect_timeout, open)
            .await
            .map_err(|_| Error::Connection {
                broker: addr.to_owned(),
                message: format!(
                    "no connection within socket.connection.setup.timeout.ms = {:?}",
                    opts.connect_timeout
                ),
            })??;
        let crate::security::Secured {
            stream,
            certificate_wanted,
        } = stream;
        let (read, write) = tokio::io::split(stream);
        let pending: Pending = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            read,
            addr.to_owned(),
            Arc::clone(&pending),
            Arc::clone(&dead),
        ));
        let mut conn = Connection {
            addr: addr.to_owned(),
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_correlation: AtomicI32::new(1),
            dead,
            versions: HashMap::new(),
            client_id: StrBytes::from_string(opts.client_id.clone()),
            request_timeout: opts.request_timeout,
            reader,
        };
        conn.versions = conn
            .api_versions()
            .await
            .map_err(|e| conn.tls_alert(e, certificate_wanted))?;
        if let Some(sasl) = opts.security.sasl() {
            conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    /// With TLS 1.3 the broker judges our client certificate after our side of the handshake
    /// completed, so its refusal arrives on the first read: as an alert, or (when the broker's
    /// close overtakes it) as the connection closing right after a handshake in which the
    /// broker asked for a certificate we do not have. Report either as the TLS failure it is.
    fn tls_alert(&self, e: Error, certificate_wanted: bool) -> Error {
        match &e {
            Error::Connection { message, .. } if message.contains("received fatal alert") => {
                Error::Tls {
                    broker: self.addr.clone(),
                    failure: crate::error::TlsFailure::RefusedByBroker,
                    message: message.clone(),
                }
            }
            Error::Connection { message, .. } if certificate_wanted => Error::Tls {
                broker: self.addr.clone(),
                failure: crate::error::TlsFailure::RefusedByBroker,
                message: format!(
                    "the broker asked for a client certificate and none is configured \
                     (ssl.certificate.location, ssl.key.location), then dropped the connection: {message}"
                ),
            },
            _ => e,
        }
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds driven by rsasl (the SASL library
    /// rskafka's data path uses too). PLAIN takes one round; SCRAM takes two and checks the
    /// broker's final signature, so a broker that does not know the password cannot pass.
    /// Errors never carry the password: only the broker's message and rsasl's reason.
    async fn authenticate(&self, sasl: &Sasl) -> Result<()> {
        let mechanism = sasl.mechanism.name();
        let fail = |message: String| Error::Authentication {
            broker: self.addr.clone(),
            mechanism: mechanism.to_owned(),
            username: sasl.username.clone(),
            message,
        };
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let response = self.send(&handshake, 1).await?;
        if response.error_code != 0 {
            let enabled: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(fail(format!(
                "{}: the broker enables {}",
                KafkaCode(response.error_code),
                enabled.join(", ")
            )));
        }
        let credentials = rsasl::config::SASLConfig::with_credentials(
            None,
            sasl.username.clone(),
            sasl.password.expose().to_owned(),
        )
        .map_err(|_| fail("the SASL library refused the credentials".into()))?;
        let name = rsasl::mechname::Mechname::parse(mechanism.as_bytes())
            .map_err(|e| fail(format!("mechanism name: {e}")))?;
        let mut session = rsasl::prelude::SASLClient::new(credentials)
            .start_suggested(&[name])
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        let mut received: Option<Bytes> = None;
        // PLAIN needs one round and SCRAM two; more means the exchange is going nowhere.
        for _ in 0..4 {
            let mut out = Vec::new();
            let state = session
                .step(received.as_deref(), &mut out)
                .map_err(|e| fail(format!("exchange: {e}")))?;
            if state.has_sent_message() {
                let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(out));
                let response = self.send(&request, 2).await?;
                if response.error_code != 0 {
                    return Err(fail(format!(
                        "{}{}",
                        KafkaCode(response.error_code),
                        response
                            .error_message
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )));
                }
                received = Some(response.auth_bytes);
            }
            if state.is_finished() {
                tracing::debug!(broker = %self.addr, mechanism, username = %sasl.username, "SASL authenticated");
                return Ok(());
            }
        }
        Err(fail("the exchange did not finish".into()))
    }

    /// Whether the socket failed; a dead connection is replaced, never reused.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// ApiVersions v3, falling back to v0 if the broker says so.
    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = self.send_versioned(&request, 3).await?;
        if response.error_code == KafkaCode::UNSUPPORTED_VERSION.0 {
            response = self
                .send_versioned(&ApiVersionsRequest::default(), 0)
                .await?;
        }
        Error::check(response.error_code, || {
            crate::error::Context::broker(self.addr.clone())
        })?;
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// The highest version of `R` both sides speak, capped at `cap`.
    pub(crate) fn version<R: Request>(&self, cap: i16) -> Result<i16> {
        let ours_max = R::VERSIONS.max.min(cap);
        let ours_min = R::VERSIONS.min;
        let unsupported = || Error::UnsupportedVersion {
            broker: self.addr.clone(),
            api: api_name(R::KEY),
            ours: format!("{ours_min}..={ours_max}"),
        };
        let (min, max) = *self.versions.get(&R::KEY).ok_or_else(unsupported)?;
        // The highest common version whose response layout we check (see `guard`).
        (min.max(ours_min)..=max.min(ours_max))
            .rev()
            .find(|&v| schemas::layout(R::RESPONSE, v).is_some())
            .ok_or_else(unsupported)
    }

    /// Sends `request` at the highest common version up to `cap` and decodes the response.
    pub(crate) async fn send<R: Request>(&self, request: &R, cap: i16) -> Result<R::Response> {
        let version = self.version::<R>(cap)?;
        self.send_versioned(request, version).await
    }

    /// Like [`Connection::send`], waiting up to `timeout` instead of `request.timeout.ms`: for
    /// requests the broker may hold on purpose (JoinGroup waits for the whole group, Fetch
    /// waits up to `fetch.max.wait.ms`).
    pub(crate) async fn send_timeout<R: Request>(
        &self,
        request: &R,
        cap: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version::<R>(cap)?;
        self.exchange(request, version, timeout).await
    }

    /// The broker's `host:port`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    async fn send_versioned<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.exchange(request, version, self.request_timeout).await
    }

    async fn exchange<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        if self.is_dead() {
            return Err(self.closed());
        }
        let correlation = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(request, version, correlation)?;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(correlation, tx);
        let written = async {
            let mut w = self.writer.lock().await;
            w.write_all(&frame).await?;
            w.flush().await
        };
        if let Err(e) = written.await {
            self.lock_pending().remove(&correlation);
            self.dead.store(true, Ordering::Release);
            return Err(Error::Connection {
                broker: self.addr.clone(),
                message: format!("write: {e}"),
            });
        }
        let body = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(self.closed()),
            Err(_) => {
                self.lock_pending().remove(&correlation);
                // The response may still arrive; we cannot tell it from the next one's bytes
                // if the broker is wedged, so the connection is retired (as the Java client does).
                self.dead.store(true, Ordering::Release);
                return Err(Error::Timeout {
                    what: format!("{} request to {}", api_name(R::KEY), self.addr),
                    context: Box::new(crate::error::Context::broker(self.addr.clone())),
                    after: timeout,
                });
            }
        };
        decode_response::<R>(&self.addr, body, version)
    }

    fn encode<R: Request>(&self, request: &R, version: i16, correlation: i32) -> Result<BytesMut> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|()| request.encode(&mut buf, version))
            .map_err(|e| Error::Protocol {
                broker: self.addr.clone(),
                message: format!("encoding {} v{version}: {e}", api_name(R::KEY)),
            })?;
        let len = i32::try_from(buf.len() - 4).map_err(|_| Error::Protocol {
            broker: self.addr.clone(),
            message: format!(
                "{} request of {} bytes is too large",
                api_name(R::KEY),
                buf.len()
            ),
        })?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf)
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i32, oneshot::Sender<Result<Bytes>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed(&self) -> Error {
        Error::Connection {
            broker: self.addr.clone(),
            message: "connection closed".into(),
        }
    }
}

/// Decodes a response frame (correlation id onwards). Any bytes give a value or an error.
pub(crate) fn decode_response<R: Request>(
    broker: &str,
    mut body: Bytes,
    version: i16,
) -> Result<R::Response> {
    let bad = |what: String| Error::Protocol {
        broker: broker.to_owned(),
        message: format!("{} v{version} response: {what}", api_name(R::KEY)),
    };
    ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| bad(format!("header: {e}")))?;
    let layout = schemas::layout(R::RESPONSE, version)
        .ok_or_else(|| bad("no layout to check it against".to_owned()))?;
    guard::check(layout, &body).map_err(bad)?;
    R::Response::decode(&mut body, version).map_err(|e| bad(e.to_string()))
}

/// Decodes a message carried as bytes inside a response (a group member's
/// `ConsumerProtocolSubscription`, written by another client) after checking it against its
/// layout, as responses are. Returns what was wrong on failure.
pub(crate) fn decode_embedded<M: Decodable>(
    name: &str,
    mut body: Bytes,
    version: i16,
) -> std::result::Result<M, String> {
    let layout =
        schemas::layout(name, version).ok_or_else(|| format!("{name} v{version} is unknown"))?;
    guard::check(layout, &body)?;
    M::decode(&mut body, version).map_err(|e| format!("{name} v{version}: {e}"))
}

async fn read_loop(
    mut read: ReadHalf<Box<dyn Stream>>,
    addr: String,
    pending: Pending,
    dead: Arc<AtomicBool>,
) {
    let error = loop {
        let len = match read.read_i32().await {
            Ok(len) => len,
            Err(e) => break format!("read: {e}"),
        };
        let Some(len) = usize::try_from(len)
            .ok()
            .filter(|l| (4..=MAX_RESPONSE_BYTES).contains(l))
        else {
            break format!("broker declared a {len}-byte response (limit {MAX_RESPONSE_BYTES})");
        };
        let mut body = vec![0u8; len];
        if let Err(e) = read.read_exact(&mut body).await {
            break format!("read: {e}");
        }
        let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let waiter = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&correlation);
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(Bytes::from(body)));
            }
            // A response nobody waits for: its request timed out and was abandoned.
            None => tracing::debug!(broker = %addr, correlation, "dropping unclaimed response"),
        }
    };
    dead.store(true, Ordering::Release);
    let waiters: Vec<_> = pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    for (_, tx) in waiters {
        let _ = tx.send(Err(Error::Connection {
            broker: addr.clone(),
            message: error.clone(),
        }));
    }
}

/// The name of an API key, for messages (`JoinGroup`).
pub(crate) fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, MetadataRequest,
        OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    };
    use proptest::prelude::*;

    fn all<R: Request>(bytes: &[u8]) {
        for v in R::VERSIONS.min..=R::VERSIONS.max {
            if schemas::layout(R::RESPONSE, v).is_some() {
                let _ = decode_response::<R>("fuzz", Bytes::copy_from_slice(bytes), v);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a broker (or something pretending to be one) sends, decoding returns a
        /// value or an error: no panic, no allocation driven by a bogus length.
        #[test]
        fn arbitrary_response_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            all::<MetadataRequest>(&bytes);
            all::<FindCoordinatorRequest>(&bytes);
            all::<JoinGroupRequest>(&bytes);
            all::<SyncGroupRequest>(&bytes);
            all::<HeartbeatRequest>(&bytes);
            all::<OffsetCommitRequest>(&bytes);
            all::<OffsetFetchRequest>(&bytes);
            all::<ApiVersionsRequest>(&bytes);
        }
    }

    #[test]
    fn a_huge_declared_array_is_an_error_not_an_allocation() {
        // Correlation id, no header tags, then a Metadata v12 body whose broker array claims
        // 2^32 - 2 entries: kafka-protocol alone would try to allocate for all of them.
        let body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let e = decode_response::<MetadataRequest>("b:1", Bytes::from(body), 12).unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
    }

    /// A broker that wants a client certificate, gets none, and closes the connection without
    /// its alert reaching us (as a Java broker did once in CI) is a TLS refusal that names the
    /// missing settings, not "connection closed". The peer here is a rustls server that drops
    /// the socket instead of sending its alert, which makes that order of events certain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_closing_on_a_missing_client_certificate_is_a_tls_refusal() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let dir = std::env::temp_dir().join(format!("gregor-mtls-close-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("this test makes its certificates with `openssl`, which is not on PATH");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=test CA",
            "-days",
            "1",
        ]);
        openssl(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let server_config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // The server side: handshake until rustls refuses the empty client certificate, then
        // drop the socket with the alert still unsent.
        let server = std::thread::spawn(move || -> String {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(server_config).unwrap();
            loop {
                while conn.wants_write() {
                    if let Err(e) = conn.write_tls(&mut tcp) {
                        return format!("write: {e}");
                    }
                }
                match conn.read_tls(&mut tcp) {
                    Ok(0) => return "the client closed first".into(),
                    Ok(_) => {}
                    Err(e) => return format!("read: {e}"),
                }
                if let Err(e) = conn.process_new_packets() {
                    return e.to_string();
                }
            }
        });

        let config = crate::config::ClientConfig::new()
            .set("security.protocol", "SSL")
            .unwrap()
            .set("ssl.ca.location", dir.join("ca.pem").display().to_string())
            .unwrap();
        let opts = ConnectOptions {
            client_id: "mtls-close".into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            security: Security::from_config(&config).unwrap(),
        };
        let Err(e) = Connection::connect(&addr, &opts).await else {
            panic!("a server that requires a client certificate accepted none");
        };
        let refused = server.join().unwrap();
        assert!(refused.contains("certificate"), "server side: {refused}");
        assert!(
            matches!(
                &e,
                Error::Tls { failure: crate::error::TlsFailure::RefusedByBroker, broker, .. } if *broker == addr
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("ssl.certificate.location"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
