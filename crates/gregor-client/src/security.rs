//! TLS and SASL, built once from the configuration and used by both data paths.
//!
//! ```text
//! ClientConfig ──▶ Security::from_config ──┬─▶ rustls ClientConfig ─┬─▶ rskafka (produce)
//!  security.protocol, ssl.*, sasl.*        │                        └─▶ wire::Connection (groups,
//!                                          └─▶ SASL credentials ────┬─▶ rskafka      fetch, admin)
//!                                                                   └─▶ wire::Connection
//! ```
//!
//! Both paths get the same rustls configuration (ring provider, the same roots and client
//! certificate, the same host-name rule) and the same SASL mechanism and credentials, and both
//! run SASL through rsasl (rskafka's own SASL library), so the group coordinator's connection
//! authenticates exactly as the produce path does.
//!
//! Secrets (`sasl.password`, the private key) live only in [`Secret`] and in rustls' and
//! rsasl's own structures; nothing here formats them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::error::{Error, Result, TlsFailure};

/// A byte stream to a broker: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A SASL mechanism gregor speaks (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// RFC 4616: user name and password in the clear (use it over TLS only).
    Plain,
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka defines it.
    ScramSha512,
}

impl Mechanism {
    /// The mechanism's IANA name, as the broker knows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A string that is never printed: `Debug` shows `[redacted]`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// SASL settings: mechanism and credentials.
#[derive(Debug, Clone)]
pub(crate) struct Sasl {
    pub(crate) mechanism: Mechanism,
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// How to secure a connection: TLS (optional), then SASL (optional).
#[derive(Clone)]
pub(crate) struct Security {
    protocol: &'static str,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Whether `tls` presents a client certificate (`ssl.certificate.location`).
    client_cert: bool,
    sasl: Option<Sasl>,
}

/// A TLS (or plain) stream to a broker, and whether the broker asked for a client
/// certificate that this configuration does not have.
pub(crate) struct Secured {
    pub(crate) stream: Box<dyn Stream>,
    /// Set by the handshake when the broker sent a CertificateRequest we could not answer:
    /// with TLS 1.3 it then closes the connection after the handshake, sometimes with an
    /// alert, sometimes without one reaching us.
    pub(crate) certificate_wanted: bool,
}

/// Stands in for "no client certificate" on one connection and remembers whether the broker
/// asked for one.
#[derive(Debug, Default)]
struct NoCertificate(AtomicBool);

impl ResolvesClientCert for NoCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Security {
    /// Reads `security.protocol`, `ssl.*` and `sasl.*`, loading certificate and key files now
    /// so that a bad file is a config error at build time, not a connection error later.
    pub(crate) fn from_config(config: &ClientConfig) -> Result<Security> {
        let (protocol, tls, sasl) = match config.get("security.protocol").unwrap_or("PLAINTEXT") {
            "PLAINTEXT" => ("PLAINTEXT", false, false),
            "SSL" => ("SSL", true, false),
            "SASL_PLAINTEXT" => ("SASL_PLAINTEXT", false, true),
            "SASL_SSL" => ("SASL_SSL", true, true),
            other => {
                return Err(Error::config(
                    "security.protocol",
                    format!("{other:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                ));
            }
        };
        let tls = if tls { Some(tls_config(config)?) } else { None };
        let client_cert = config
            .get("ssl.certificate.location")
            .is_some_and(|p| !p.is_empty());
        let sasl = if sasl {
            Some(sasl_config(config)?)
        } else {
            None
        };
        Ok(Security {
            protocol,
            tls,
            client_cert,
            sasl,
        })
    }

    /// The rustls configuration, when the protocol uses TLS.
    pub(crate) fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }

    /// The SASL settings, when the protocol uses SASL.
    pub(crate) fn sasl(&self) -> Option<&Sasl> {
        self.sasl.as_ref()
    }

    /// The same SASL settings in rskafka's terms (rskafka runs them through rsasl too).
    pub(crate) fn rskafka_sasl(&self) -> Option<rskafka::client::SaslConfig> {
        use rskafka::client::{Credentials, SaslConfig};
        self.sasl.as_ref().map(|s| {
            let credentials = Credentials::new(s.username.clone(), s.password.expose().to_owned());
            match s.mechanism {
                Mechanism::Plain => SaslConfig::Plain(credentials),
                Mechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                Mechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            }
        })
    }

    /// Wraps a fresh TCP connection to `addr` in TLS when the protocol asks for it, verifying
    /// the broker's certificate (and, unless turned off, that it names `addr`'s host).
    pub(crate) async fn secure(&self, tcp: TcpStream, addr: &str) -> Result<Secured> {
        let Some(tls) = &self.tls else {
            return Ok(Secured {
                stream: Box::new(tcp),
                certificate_wanted: false,
            });
        };
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| Error::Tls {
            broker: addr.to_owned(),
            failure: TlsFailure::Handshake,
            message: format!("{host:?} is neither a DNS name nor an IP address"),
        })?;
        // Without a client certificate, a per-connection resolver notes whether the broker
        // asked for one, so that its closing the connection can be explained.
        let (tls, asked) = if self.client_cert {
            (Arc::clone(tls), None)
        } else {
            let asked = Arc::new(NoCertificate::default());
            let mut config = rustls::ClientConfig::clone(tls);
            config.client_auth_cert_resolver = Arc::clone(&asked) as Arc<dyn ResolvesClientCert>;
            (Arc::new(config), Some(asked))
        };
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(addr, &e))?;
        Ok(Secured {
            stream: Box::new(stream),
            certificate_wanted: asked.is_some_and(|a| a.0.load(Ordering::Relaxed)),
        })
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Classifies a failed handshake (or a TLS alert met on the first read) by rustls' error.
pub(crate) fn tls_error(addr: &str, e: &std::io::Error) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let failure = match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsFailure::UntrustedCertificate
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::HostNameMismatch
            }
            _ => TlsFailure::InvalidCertificate,
        },
        Some(rustls::Error::AlertReceived(_)) => TlsFailure::RefusedByBroker,
        _ => TlsFailure::Handshake,
    };
    Error::Tls {
        broker: addr.to_owned(),
        failure,
        message: e.to_string(),
    }
}

fn sasl_config(config: &ClientConfig) -> Result<Sasl> {
    let mechanism = match config.get("sasl.mechanism").unwrap_or("PLAIN") {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::ScramSha256,
        "SCRAM-SHA-512" => Mechanism::ScramSha512,
        other => {
            return Err(Error::config(
                "sasl.mechanism",
                format!("{other:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
            ));
        }
    };
    let username = config
        .get("sasl.username")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::config("sasl.username", "is required with SASL"))?;
    let password = config
        .get("sasl.password")
        .ok_or_else(|| Error::config("sasl.password", "is required with SASL"))?;
    Ok(Sasl {
        mechanism,
        username: username.to_owned(),
        password: Secret(password.to_owned()),
    })
}

/// The rustls client configuration: ring, TLS 1.2 and 1.3, roots from `ssl.ca.location` (or
/// the system's), host-name check per `ssl.endpoint.identification.algorithm`, and a client
/// certificate when `ssl.certificate.location` and `ssl.key.location` are set.
fn tls_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>> {
    // An explicit provider: never rustls' process-wide default, which is ambiguous (and
    // panics) when another crate of the program enables a second provider.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots(config)?);
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|e| {
            Error::config(
                "ssl.ca.location",
                format!("cannot verify brokers with these CA certificates: {e}"),
            )
        })?;
    let check_host = !matches!(
        config.get("ssl.endpoint.identification.algorithm"),
        Some("" | "none")
    );
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("security.protocol", format!("TLS setup: {e}")))?;
    let builder = if check_host {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(webpki)))
    };
    let cert = config
        .get("ssl.certificate.location")
        .filter(|p| !p.is_empty());
    let key = config.get("ssl.key.location").filter(|p| !p.is_empty());
    let tls = match (cert, key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates("ssl.certificate.location", cert)?;
            let key = private_key(key)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::config(
                    "ssl.key.location",
                    format!("the key cannot be used with the certificate of ssl.certificate.location: {e}"),
                )
            })?
        }
        (Some(_), None) => {
            return Err(Error::config(
                "ssl.key.location",
                "is required with ssl.certificate.location (mutual TLS needs both)",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::config(
                "ssl.certificate.location",
                "is required with ssl.key.location (mutual TLS needs both)",
            ));
        }
    };
    Ok(Arc::new(tls))
}

fn roots(config: &ClientConfig) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match config.get("ssl.ca.location").filter(|p| !p.is_empty()) {
        Some(path) => {
            for cert in certificates("ssl.ca.location", path)? {
                roots.add(cert).map_err(|e| {
                    Error::config(
                        "ssl.ca.location",
                        format!("{path}: not a usable CA certificate: {e}"),
                    )
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::config(
                    "ssl.ca.location",
                    "is unset and no system CA certificates were found: set it to the PEM file of the CA that signed the brokers' certificates",
                ));
            }
        }
    }
    Ok(roots)
}

fn certificates(key: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).map_err(|e| Error::config(key, format!("cannot read {path}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(key, format!("{path} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config(
            key,
            format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

/// The client's private key. Errors name the file and the problem, never its contents.
fn private_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    const KEY: &str = "ssl.key.location";
    let pem =
        std::fs::read(path).map_err(|e| Error::config(KEY, format!("cannot read {path}: {e}")))?;
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(Error::config(
            KEY,
            format!(
                "{path} is an encrypted private key, which gregor does not read; decrypt it (openssl pkey -in {path} -out plain.key) and protect the file instead"
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "holds no PEM private key",
            _ => "is not a valid PEM private key",
        };
        Error::config(
            KEY,
            format!("{path} {why} (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)"),
        )
    })
}

/// `ssl.endpoint.identification.algorithm` empty or `none`: the chain is verified as usual,
/// only a certificate that does not name the host is accepted. Anyone holding any certificate
/// of the trusted CA can then pose as the broker, hence "unsafe" in the docs.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error means the chain
        // was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_cut_from_addresses() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("nohost"), "nohost");
    }

    #[test]
    fn sasl_settings_are_redacted_in_debug() {
        let config = ClientConfig::new()
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .unwrap()
            .set("sasl.username", "alice")
            .unwrap()
            .set("sasl.password", "s3cr3t-pw")
            .unwrap();
        let security = Security::from_config(&config).unwrap();
        let debug = format!("{security:?}");
        assert!(!debug.contains("s3cr3t-pw"), "{debug}");
        assert!(
            debug.contains("alice") && debug.contains("ScramSha512"),
            "{debug}"
        );
        assert_eq!(
            security.sasl().map(|s| s.password.expose()),
            Some("s3cr3t-pw")
        );
    }

    #[test]
    fn bad_files_are_config_errors_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("gregor-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem at all\n").unwrap();
        let encrypted = dir.join("enc.key");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let base = || ClientConfig::new().set("security.protocol", "SSL").unwrap();
        let e = Security::from_config(
            &base()
                .set("ssl.ca.location", junk.display().to_string())
                .unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "ssl.ca.location"),
            "{e}"
        );
        let e = Security::from_config(
            &base()
                .set("ssl.ca.location", "/nonexistent/ca.pem")
                .unwrap(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let e = Security::from_config(
            &base()
                .set("ssl.certificate.location", junk.display().to_string())
                .unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssl.key.location"), "{e}");
        let e = private_key(&junk.display().to_string()).unwrap_err();
        assert!(e.to_string().contains("holds no PEM private key"), "{e}");
        let e = private_key(&encrypted.display().to_string()).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
