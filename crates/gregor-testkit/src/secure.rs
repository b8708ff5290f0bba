//! A secured single-node Kafka for security tests: TLS with a CA made at start, mutual TLS,
//! SASL PLAIN and SCRAM-SHA-256/512, and ACLs enforced by Kafka's StandardAuthorizer.
//!
//! ```text
//! PLAINTEXT       127.0.0.1:p1  principal ANONYMOUS (super user: the testkit's admin path)
//! SASL_SSL        127.0.0.1:p2  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 over TLS
//! SSL             127.0.0.1:p3  mutual TLS (a client certificate is required)
//! SASL_PLAINTEXT  127.0.0.1:p4  the same SASL mechanisms without TLS
//! CONTROLLER      127.0.0.1:p5  KRaft quorum
//! ```
//!
//! Certificates are made with the system `openssl` under the broker's directory: a test CA, a
//! server certificate for IP 127.0.0.1 only (so connecting as `localhost` is a host-name
//! mismatch), a client certificate, and a second, untrusted CA with its own server-style
//! certificate for negative tests. Users and passwords are random per broker.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::dist::{Distribution, state_root};
use crate::error::{Error, IoContext, Result};
use crate::node::{NodeSpec, terminate};
use crate::ports::free_ports;
use crate::ready::{start_timeout, wait_until_ready};

/// The SCRAM mechanisms every user is created for.
pub const SCRAM_MECHANISMS: [&str; 2] = ["SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What the node needs to know to secure its listeners.
#[derive(Debug, Clone)]
pub(crate) struct Security {
    pub(crate) sasl_ssl_port: u16,
    pub(crate) ssl_port: u16,
    pub(crate) sasl_plaintext_port: u16,
    pub(crate) keystore: PathBuf,
    pub(crate) truststore: PathBuf,
    pub(crate) users: Vec<User>,
}

/// A SASL user of the secured broker.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// User name (principal `User:<name>`).
    pub name: String,
    /// Password (random per broker).
    pub password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl Security {
    pub(crate) fn properties(&self, node: &NodeSpec) -> Vec<(&'static str, String)> {
        let plain_users: String = self
            .users
            .iter()
            .map(|u| format!(" user_{}=\"{}\"", u.name, u.password))
            .collect();
        let plain = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};"
        );
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned();
        vec![
            (
                "listeners",
                format!(
                    "PLAINTEXT://127.0.0.1:{},SASL_SSL://127.0.0.1:{},SSL://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    node.port,
                    self.sasl_ssl_port,
                    self.ssl_port,
                    self.sasl_plaintext_port,
                    node.controller_port
                ),
            ),
            (
                "advertised.listeners",
                format!(
                    "PLAINTEXT://127.0.0.1:{},SASL_SSL://127.0.0.1:{},SSL://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{}",
                    node.port, self.sasl_ssl_port, self.ssl_port, self.sasl_plaintext_port
                ),
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
                    .into(),
            ),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into()),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", plain.clone()),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", plain),
            ("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config", scram.clone()),
            ("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", scram.clone()),
            ("listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", scram.clone()),
            ("listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config", scram),
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", self.keystore.display().to_string()),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", self.truststore.display().to_string()),
            ("listener.name.ssl.ssl.client.auth", "required".into()),
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            ),
            ("super.users", "User:ANONYMOUS;User:admin".into()),
            ("allow.everyone.if.no.acl.found", "false".into()),
        ]
    }

    /// `kafka-storage format` arguments creating every user for both SCRAM mechanisms.
    pub(crate) fn format_args(&self) -> Vec<String> {
        self.users
            .iter()
            .flat_map(|u| {
                SCRAM_MECHANISMS.iter().flat_map(move |m| {
                    [
                        "--add-scram".to_owned(),
                        format!("{m}=[name={},password={}]", u.name, u.password),
                    ]
                })
            })
            .collect()
    }
}

/// Files of the test PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA the broker's certificate chains to (PEM).
    pub ca: PathBuf,
    /// A client certificate signed by that CA (PEM), CN=gregor-client.
    pub client_cert: PathBuf,
    /// Its private key (PKCS#8 PEM, unencrypted).
    pub client_key: PathBuf,
    /// A CA the broker does not know (PEM).
    pub untrusted_ca: PathBuf,
    /// A client certificate signed by the untrusted CA.
    pub untrusted_client_cert: PathBuf,
    /// Its private key.
    pub untrusted_client_key: PathBuf,
    /// Key and certificate of the trusted client in one PEM file, for Java clients
    /// (`ssl.keystore.type=PEM`, `ssl.keystore.location=...`).
    pub client_keystore: PathBuf,
}

/// A secured single-node broker that belongs to the test; killed when dropped.
pub struct SecureKafka {
    spec: NodeSpec,
    sec: Security,
    child: Option<Child>,
    pki: Pki,
    users: Vec<User>,
}

impl std::fmt::Debug for SecureKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureKafka")
            .field("dir", &self.spec.dir)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.spec.dir);
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::NotLocal(format!("the secured broker needs `openssl` on PATH: {e}")))?;
    if !out.status.success() {
        return Err(Error::Tool {
            class: format!("openssl {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Makes a CA and, signed by it, a leaf certificate with the given subject, SANs and usage.
fn issue(dir: &Path, ca: &str, leaf: &str, subject: &str, ext: &str) -> Result<()> {
    let ext_file = format!("{leaf}.ext");
    fs::write(dir.join(&ext_file), ext).context(|| format!("writing {ext_file}"))?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{leaf}.key"),
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{leaf}.key"),
            "-subj",
            subject,
            "-out",
            &format!("{leaf}.csr"),
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{leaf}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            &format!("{leaf}.pem"),
        ],
    )
}

fn make_ca(dir: &Path, name: &str, cn: &str) -> Result<()> {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{name}.pem"),
        ],
    )
}

fn make_pki(dir: &Path) -> Result<(Pki, PathBuf)> {
    fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    make_ca(dir, "ca", "gregor test CA")?;
    make_ca(dir, "untrusted-ca", "an unknown CA")?;
    issue(
        dir,
        "ca",
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )?;
    issue(
        dir,
        "ca",
        "client",
        "/CN=gregor-client",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )?;
    issue(
        dir,
        "untrusted-ca",
        "untrusted-client",
        "/CN=intruder",
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )?;
    // Kafka's PEM keystore: the PKCS#8 key followed by the certificate chain.
    let keystore = dir.join("server-keystore.pem");
    let mut pem =
        fs::read_to_string(dir.join("server.key")).context(|| "reading server.key".into())?;
    pem.push_str(
        &fs::read_to_string(dir.join("server.pem")).context(|| "reading server.pem".into())?,
    );
    pem.push_str(&fs::read_to_string(dir.join("ca.pem")).context(|| "reading ca.pem".into())?);
    fs::write(&keystore, pem).context(|| format!("writing {}", keystore.display()))?;
    let client_keystore = dir.join("client-keystore.pem");
    let mut pem =
        fs::read_to_string(dir.join("client.key")).context(|| "reading client.key".into())?;
    pem.push_str(
        &fs::read_to_string(dir.join("client.pem")).context(|| "reading client.pem".into())?,
    );
    fs::write(&client_keystore, pem)
        .context(|| format!("writing {}", client_keystore.display()))?;
    Ok((
        Pki {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            untrusted_ca: dir.join("untrusted-ca.pem"),
            untrusted_client_cert: dir.join("untrusted-client.pem"),
            untrusted_client_key: dir.join("untrusted-client.key"),
            client_keystore,
        },
        keystore,
    ))
}

impl SecureKafka {
    /// Makes the PKI and users, formats and starts the node, and waits until it answers
    /// metadata on its PLAINTEXT listener. Users: `admin` (super user), `alice` and `bob` (no
    /// rights until granted with [`SecureKafka::acl`]).
    pub async fn start() -> Result<SecureKafka> {
        if std::env::var_os(crate::local::BOOTSTRAP_ENV).is_some() {
            return Err(Error::NotLocal(format!(
                "a secured local broker was asked for while {} names an external cluster; unset it to run security tests",
                crate::local::BOOTSTRAP_ENV
            )));
        }
        let dist = tokio::task::spawn_blocking(Distribution::ensure)
            .await
            .map_err(|e| Error::Io {
                context: "preparing the Kafka distribution".into(),
                source: std::io::Error::other(e),
            })??;
        let dir = state_root().join("secure").join(format!(
            "{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let pki_dir = dir.join("pki");
        let (pki, keystore) = {
            let pki_dir = pki_dir.clone();
            tokio::task::spawn_blocking(move || make_pki(&pki_dir))
                .await
                .map_err(|e| Error::Io {
                    context: "making test certificates".into(),
                    source: std::io::Error::other(e),
                })??
        };
        let users: Vec<User> = ["admin", "alice", "bob"]
            .iter()
            .map(|n| User {
                name: (*n).to_owned(),
                password: format!("{n}-{}", random_secret()),
            })
            .collect();
        let ports = free_ports(5)?;
        let sec = Security {
            sasl_ssl_port: ports[1],
            ssl_port: ports[2],
            sasl_plaintext_port: ports[3],
            keystore,
            truststore: pki.ca.clone(),
            users: users.clone(),
        };
        let spec = NodeSpec {
            node_id: 1,
            port: ports[0],
            controller_port: ports[4],
            voters: format!("1@127.0.0.1:{}", ports[4]),
            dir: dir.join("node-1"),
            replication: 1,
            min_isr: 1,
            heap: "512m",
            security: Some(sec.clone()),
        };
        let cluster_id = crate::cluster::new_cluster_id();
        {
            let spec = spec.clone();
            let dist = dist.clone();
            tokio::task::spawn_blocking(move || spec.format(&dist, &cluster_id))
                .await
                .map_err(|e| Error::Io {
                    context: "formatting the secured broker".into(),
                    source: std::io::Error::other(e),
                })??;
        }
        let mut child = spec.spawn(&dist)?;
        let waited = wait_until_ready(
            &spec.bootstrap(),
            start_timeout(),
            || match child.try_wait() {
                Ok(Some(status)) => Err(spec.failure(format!("exited with {status}"))),
                _ => Ok(()),
            },
            |why| spec.failure(why),
        )
        .await;
        if let Err(e) = waited {
            terminate(child.id(), &spec.dir, Duration::from_secs(5));
            let _ = child.wait();
            return Err(e);
        }
        Ok(SecureKafka {
            spec,
            sec,
            child: Some(child),
            pki,
            users,
        })
    }

    /// The PLAINTEXT listener (principal ANONYMOUS, a super user): for setting things up.
    pub fn plaintext_bootstrap(&self) -> String {
        self.spec.bootstrap()
    }

    /// The SASL_SSL listener.
    pub fn sasl_ssl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sec.sasl_ssl_port)
    }

    /// The SSL listener (mutual TLS: a client certificate is required).
    pub fn ssl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sec.ssl_port)
    }

    /// The SASL_PLAINTEXT listener.
    pub fn sasl_plaintext_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.sec.sasl_plaintext_port)
    }

    /// The test PKI.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// A user by name (`admin`, `alice`, `bob`).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The broker's server log (to check, for example, that no secret was logged).
    pub fn server_log(&self) -> PathBuf {
        self.spec.server_log()
    }

    /// Runs Kafka's AclCommand against the PLAINTEXT listener with `args`
    /// (e.g. `["--add", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "t"]`).
    pub async fn acl(&self, args: &[&str]) -> Result<String> {
        let bootstrap = self.plaintext_bootstrap();
        let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
        all.extend_from_slice(args);
        Ok(crate::tools::run(
            "org.apache.kafka.tools.AclCommand",
            &all,
            None,
            Duration::from_secs(60),
        )
        .await?
        .stdout)
    }
}
