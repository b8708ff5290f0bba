//! A thin client for the Confluent Schema Registry REST API, with bounded retries.
//!
//! Only what a codec needs: a schema by id, register, look up, latest version, and the
//! compatibility level. Every request has a timeout; retriable failures (connection refused,
//! timeout, 5xx, 429) are retried with exponential backoff until `max_attempts` or the
//! `deadline`, whichever comes first. Response bodies larger than [`MAX_BODY`] are refused.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use crate::codec::BoxFuture;

/// Largest registry response body read (schemas are kilobytes; this bounds memory).
pub const MAX_BODY: usize = 8 << 20;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Why a registry request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryErrorKind {
    /// No connection could be made.
    Unreachable(String),
    /// No complete answer within the request timeout.
    Timeout,
    /// The registry answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// Confluent `error_code` (e.g. 40403 schema not found, 409 incompatible).
        error_code: Option<i64>,
        /// Its `message`.
        message: String,
    },
    /// The answer was not the JSON expected, or too large.
    Malformed(String),
    /// An `https://` URL without the `tls` feature.
    TlsDisabled,
}

/// A failed registry request: what was asked, how often, and why it failed in the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "schema registry {method} {url} failed after {attempts} attempt(s) in {elapsed_ms} ms: {kind}"
)]
pub struct RegistryError {
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// Time spent, retries included.
    pub elapsed_ms: u64,
    /// The last failure.
    pub kind: RegistryErrorKind,
}

impl fmt::Display for RegistryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryErrorKind::Unreachable(e) => write!(f, "unreachable: {e}"),
            RegistryErrorKind::Timeout => f.write_str("timed out"),
            RegistryErrorKind::Status {
                status,
                error_code,
                message,
            } => match error_code {
                Some(code) => write!(f, "HTTP {status} (error_code {code}): {message}"),
                None => write!(f, "HTTP {status}: {message}"),
            },
            RegistryErrorKind::Malformed(e) => write!(f, "malformed answer: {e}"),
            RegistryErrorKind::TlsDisabled => f.write_str(
                "https needs gregor-codec's `tls` feature (rustls); build with --features gregor-codec/tls",
            ),
        }
    }
}

impl RegistryError {
    /// Unreachable, timed out, 5xx or 429: trying later may succeed.
    pub fn is_retriable(&self) -> bool {
        match &self.kind {
            RegistryErrorKind::Unreachable(_) | RegistryErrorKind::Timeout => true,
            RegistryErrorKind::Status { status, .. } => *status >= 500 || *status == 429,
            RegistryErrorKind::Malformed(_) | RegistryErrorKind::TlsDisabled => false,
        }
    }

    /// The HTTP status, if the registry answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            RegistryErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Confluent `error_code`, if the registry sent one.
    pub fn error_code(&self) -> Option<i64> {
        match &self.kind {
            RegistryErrorKind::Status { error_code, .. } => *error_code,
            _ => None,
        }
    }
}

/// A schema as registered under a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSchema {
    /// Subject.
    pub subject: String,
    /// Global schema id (what goes into the wire header).
    pub id: u32,
    /// Version within the subject.
    pub version: i32,
    /// Schema text.
    pub schema: String,
}

/// What a codec asks a schema registry. [`HttpRegistry`] is the real one; wrap it to observe
/// or count calls.
pub trait RegistryClient: Send + Sync + fmt::Debug {
    /// The schema text of `id` (`GET /schemas/ids/{id}`).
    fn schema_by_id(&self, id: u32) -> BoxFuture<'_, Result<String, RegistryError>>;

    /// Registers `schema` under `subject`, returning its id (`POST /subjects/{s}/versions`);
    /// an already registered schema returns its existing id.
    fn register<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<u32, RegistryError>>;

    /// Finds `schema` under `subject` (`POST /subjects/{s}`); `None` if it is not registered.
    fn lookup<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectSchema>, RegistryError>>;

    /// The latest version of `subject`; `None` if the subject does not exist.
    fn latest<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectSchema>, RegistryError>>;
}

/// Timeouts and retries of registry requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Timeout of one request, connection included. Default 5 s.
    pub request_timeout: Duration,
    /// Most attempts per call, the first included. Default 4.
    pub max_attempts: u32,
    /// First backoff; doubles each retry. Default 100 ms.
    pub initial_backoff: Duration,
    /// Longest backoff. Default 2 s.
    pub max_backoff: Duration,
    /// Total time a call may take, retries included. Default 15 s.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            request_timeout: Duration::from_secs(5),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            deadline: Duration::from_secs(15),
        }
    }
}

/// The Confluent Schema Registry REST client over HTTP (reqwest, no TLS unless the `tls`
/// feature is on). Cheap to clone; clones share connections and the request counter.
#[derive(Debug, Clone)]
pub struct HttpRegistry {
    base: Arc<str>,
    http: reqwest::Client,
    policy: RetryPolicy,
    requests: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
}

#[derive(Deserialize)]
struct SubjectBody {
    subject: String,
    id: u32,
    version: i32,
    schema: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

impl HttpRegistry {
    /// A client for the registry at `url` (the API base, e.g. `http://host:8081` or
    /// Apicurio's `http://host:8080/apis/ccompat/v7`) with the default [`RetryPolicy`].
    pub fn new(url: &str) -> Result<HttpRegistry, RegistryError> {
        HttpRegistry::with_policy(url, RetryPolicy::default())
    }

    /// The same with an explicit retry policy.
    pub fn with_policy(url: &str, policy: RetryPolicy) -> Result<HttpRegistry, RegistryError> {
        let base = url.trim().trim_end_matches('/');
        let fail = |kind| RegistryError {
            method: "CONNECT".into(),
            url: base.to_owned(),
            attempts: 0,
            elapsed_ms: 0,
            kind,
        };
        if base.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(fail(RegistryErrorKind::TlsDisabled));
        }
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(fail(RegistryErrorKind::Unreachable(format!(
                "{base:?} is not an http:// or https:// URL"
            ))));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(policy.request_timeout)
            .timeout(policy.request_timeout)
            .build()
            .map_err(|e| fail(RegistryErrorKind::Unreachable(e.to_string())))?;
        Ok(HttpRegistry {
            base: Arc::from(base),
            http,
            policy,
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The API base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// HTTP requests sent so far by this client and its clones, retries included. A warmed-up
    /// codec adds none per record; tests use this to prove it.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sets the compatibility level of `subject` (`BACKWARD`, `FORWARD`, `FULL`, `NONE`, and
    /// their `_TRANSITIVE` forms): `PUT /config/{subject}`.
    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let body = serde_json::json!({ "compatibility": level }).to_string();
        self.call(
            Method::PUT,
            &format!("/config/{}", encode(subject)),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// Asks whether `schema` is compatible with the latest version of `subject`
    /// (`POST /compatibility/subjects/{s}/versions/latest`).
    pub async fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let path = format!(
            "/compatibility/subjects/{}/versions/latest",
            encode(subject)
        );
        let (url, bytes) = self.call(Method::POST, &path, Some(body)).await?;
        #[derive(Deserialize)]
        struct Compat {
            is_compatible: bool,
        }
        parse::<Compat>(&url, "POST", &bytes).map(|c| c.is_compatible)
    }

    /// Sends one call with retries; returns the URL and the body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(String, Vec<u8>), RegistryError> {
        let url = format!("{}{path}", self.base);
        let start = Instant::now();
        let mut attempts = 0;
        let mut backoff = self.policy.initial_backoff;
        loop {
            attempts += 1;
            let remaining = self.policy.deadline.saturating_sub(start.elapsed());
            let timeout = self.policy.request_timeout.min(remaining);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let kind =
                match tokio::time::timeout(timeout, self.once(method.clone(), &url, body.clone()))
                    .await
                {
                    Ok(Ok(bytes)) => return Ok((url, bytes)),
                    Ok(Err(kind)) => kind,
                    Err(_) => RegistryErrorKind::Timeout,
                };
            let error = RegistryError {
                method: method.to_string(),
                url: url.clone(),
                attempts,
                elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                kind,
            };
            let left = self.policy.deadline.saturating_sub(start.elapsed());
            if !error.is_retriable() || attempts >= self.policy.max_attempts || left <= backoff {
                return Err(error);
            }
            tracing::debug!(%error, ?backoff, "schema registry request failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Vec<u8>, RegistryErrorKind> {
        let mut request = self
            .http
            .request(method, url)
            .header("accept", CONTENT_TYPE);
        if let Some(body) = body {
            request = request.header("content-type", CONTENT_TYPE).body(body);
        }
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY as u64)
        {
            return Err(RegistryErrorKind::Malformed(format!(
                "body of {} bytes exceeds {MAX_BODY}",
                response.content_length().unwrap_or(0)
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(RegistryErrorKind::Malformed(format!(
                    "body exceeds {MAX_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let (error_code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => (e.error_code, e.message.unwrap_or_default()),
            Err(_) => (
                None,
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
            ),
        };
        Err(RegistryErrorKind::Status {
            status,
            error_code,
            message,
        })
    }
}

fn transport(e: reqwest::Error) -> RegistryErrorKind {
    if e.is_timeout() {
        RegistryErrorKind::Timeout
    } else {
        // The source chain says what actually failed (refused, reset, DNS).
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        RegistryErrorKind::Unreachable(text)
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    url: &str,
    method: &str,
    bytes: &[u8],
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError {
        method: method.to_owned(),
        url: url.to_owned(),
        attempts: 1,
        elapsed_ms: 0,
        kind: RegistryErrorKind::Malformed(e.to_string()),
    })
}

/// Percent-encodes a subject for a URL path segment (subjects may hold `.`, `-`, `:`, `/`...).
fn encode(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for b in subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn not_found(e: &RegistryError) -> bool {
    e.status() == Some(404)
}

impl RegistryClient for HttpRegistry {
    fn schema_by_id(&self, id: u32) -> BoxFuture<'_, Result<String, RegistryError>> {
        Box::pin(async move {
            let (url, bytes) = self
                .call(Method::GET, &format!("/schemas/ids/{id}"), None)
                .await?;
            parse::<SchemaBody>(&url, "GET", &bytes).map(|b| b.schema)
        })
    }

    fn register<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<u32, RegistryError>> {
        Box::pin(async move {
            let body = serde_json::json!({ "schema": schema }).to_string();
            let path = format!("/subjects/{}/versions", encode(subject));
            let (url, bytes) = self.call(Method::POST, &path, Some(body)).await?;
            parse::<IdBody>(&url, "POST", &bytes).map(|b| b.id)
        })
    }

    fn lookup<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectSchema>, RegistryError>> {
        Box::pin(async move {
            let body = serde_json::json!({ "schema": schema }).to_string();
            let path = format!("/subjects/{}", encode(subject));
            match self.call(Method::POST, &path, Some(body)).await {
                Ok((url, bytes)) => parse::<SubjectBody>(&url, "POST", &bytes).map(|b| {
                    Some(SubjectSchema {
                        subject: b.subject,
                        id: b.id,
                        version: b.version,
                        schema: b.schema,
                    })
                }),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn latest<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<SubjectSchema>, RegistryError>> {
        Box::pin(async move {
            let path = format!("/subjects/{}/versions/latest", encode(subject));
            match self.call(Method::GET, &path, None).await {
                Ok((url, bytes)) => parse::<SubjectBody>(&url, "GET", &bytes).map(|b| {
                    Some(SubjectSchema {
                        subject: b.subject,
                        id: b.id,
                        version: b.version,
                        schema: b.schema,
                    })
                }),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_path_safe() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c:d"), "a%2Fb%20c%3Ad");
    }

    #[test]
    fn urls_are_checked_up_front() {
        assert!(HttpRegistry::new("ftp://x").is_err());
        if !cfg!(feature = "tls") {
            let e = HttpRegistry::new("https://registry.example").unwrap_err();
            assert_eq!(e.kind, RegistryErrorKind::TlsDisabled);
            assert!(!e.is_retriable());
        }
        assert_eq!(
            HttpRegistry::new("http://h:1/x/").unwrap().url(),
            "http://h:1/x"
        );
    }
}
