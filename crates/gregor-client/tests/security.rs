//! gregor-client against a secured broker (gregor-testkit's `SecureKafka`: TLS with a CA made at
//! start, mutual TLS, SASL PLAIN and SCRAM-SHA-256/512, ACLs by Kafka's StandardAuthorizer).
//!
//! One broker serves the whole file: a single test starts it, runs every scenario as its own
//! task (concurrently, each on its own topic and group), reports every failed scenario by name,
//! and stops the broker when done. Tracing output of the whole run is captured, and at the end
//! it, the configs' `Debug` and every error's `Debug` and `Display` are searched for the
//! passwords and the private key: none may appear.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, LocalBoxFuture};
use gregor_client::{
    Admin, ClientConfig, Consumer, Error, KafkaCode, Producer, ProducerRecord, TlsFailure,
};
use gregor_handler::dead_letter::{self, DeadLetterLayer, DeadLetterRecord, Publisher};
use gregor_handler::retry::RetryLayer;
use gregor_handler::{BoxError, ErrorClass, Message, Outcome, handler_fn};
use gregor_testkit::{SecureKafka, create_topic, unique_topic};
use tower::{Layer, ServiceExt};

/// Everything the scenarios printed or returned that could leak a secret.
#[derive(Default)]
struct Seen {
    texts: Mutex<Vec<String>>,
}

impl Seen {
    fn error(&self, e: &Error) {
        let mut t = self.texts.lock().unwrap();
        t.push(format!("{e}"));
        t.push(format!("{e:?}"));
    }

    fn debug(&self, d: &dyn std::fmt::Debug) {
        self.texts.lock().unwrap().push(format!("{d:?}"));
    }
}

/// The tracing subscriber's writer: every line into one buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

struct Env {
    kafka: SecureKafka,
    seen: Seen,
}

fn base(bootstrap: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .unwrap()
        .set("client.id", "gregor-security-test")
        .unwrap()
        .set("socket.connection.setup.timeout.ms", "10000")
        .unwrap()
        .set("request.timeout.ms", "15000")
        .unwrap()
}

fn sasl_ssl(env: &Env, user: &str, mechanism: &str) -> ClientConfig {
    let u = env.kafka.user(user).unwrap();
    base(&env.kafka.sasl_ssl_bootstrap())
        .set("security.protocol", "SASL_SSL")
        .unwrap()
        .set("sasl.mechanism", mechanism)
        .unwrap()
        .set("sasl.username", u.name.as_str())
        .unwrap()
        .set("sasl.password", u.password.as_str())
        .unwrap()
        .set("ssl.ca.location", env.kafka.pki().ca.display().to_string())
        .unwrap()
}

fn consumer_config(config: ClientConfig, group: &str) -> ClientConfig {
    config
        .set("group.id", group)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("session.timeout.ms", "6000")
        .unwrap()
        .set("heartbeat.interval.ms", "500")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap()
}

fn values(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

/// Produces `expected` to a new topic with `producer_config`, then reads them back in a
/// consumer group with `consumer`, commits, and checks the group's committed offset: the
/// data path, the group coordinator and the offset commit all over the same security.
async fn round_trip(env: &Env, name: &str, producer_config: &ClientConfig, consumer: ClientConfig) {
    let topic = unique_topic(name);
    create_topic(&env.kafka.plaintext_bootstrap(), &topic, 1, 1)
        .await
        .unwrap();
    round_trip_on(env, &topic, producer_config, consumer).await;
}

async fn round_trip_on(
    env: &Env,
    topic: &str,
    producer_config: &ClientConfig,
    consumer: ClientConfig,
) {
    env.seen.debug(producer_config);
    let expected = values(5, topic);
    let producer = Producer::connect(producer_config)
        .await
        .unwrap_or_else(|e| panic!("{topic}: producer: {e}"));
    env.seen.debug(&producer);
    for v in &expected {
        producer
            .send(ProducerRecord::new(topic.to_owned(), v.clone()).key("k"))
            .await
            .unwrap_or_else(|e| panic!("{topic}: send: {e}"));
    }
    producer.close().await.unwrap();

    let group = format!("{topic}-group");
    let config = consumer_config(consumer, &group);
    env.seen.debug(&config);
    let mut consumer = Consumer::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("{topic}: consumer: {e}"));
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < expected.len() {
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "{topic}: read {got:?} of {expected:?}"
        );
        for r in consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap_or_else(|e| panic!("{topic}: poll: {e}"))
        {
            got.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(got, expected, "{topic}: records in order, once");
    consumer.commit().await.unwrap();
    let committed = consumer
        .committed(&[gregor_client::TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    assert_eq!(
        committed.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        vec![Some(5)],
        "{topic}: offset committed through the coordinator"
    );
    consumer.close().await.unwrap();
}

async fn sasl_ssl_mechanism(env: Arc<Env>, mechanism: &'static str) {
    let config = sasl_ssl(&env, "admin", mechanism);
    round_trip(
        &env,
        &format!("sec-{}", mechanism.to_ascii_lowercase()),
        &config,
        config.clone(),
    )
    .await;
}

async fn sasl_plaintext(env: Arc<Env>) {
    let u = env.kafka.user("admin").unwrap();
    let config = base(&env.kafka.sasl_plaintext_bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.mechanism", "SCRAM-SHA-256")
        .unwrap()
        .set("sasl.username", u.name.as_str())
        .unwrap()
        .set("sasl.password", u.password.as_str())
        .unwrap();
    round_trip(&env, "sec-sasl-plaintext", &config, config.clone()).await;
}

fn mtls(env: &Env) -> ClientConfig {
    let pki = env.kafka.pki();
    base(&env.kafka.ssl_bootstrap())
        .set("security.protocol", "SSL")
        .unwrap()
        .set("ssl.ca.location", pki.ca.display().to_string())
        .unwrap()
        .set(
            "ssl.certificate.location",
            pki.client_cert.display().to_string(),
        )
        .unwrap()
        .set("ssl.key.location", pki.client_key.display().to_string())
        .unwrap()
}

/// Mutual TLS: the principal is the certificate's subject, granted what it needs; without a
/// client certificate the broker refuses the handshake.
async fn mutual_tls(env: Arc<Env>) {
    let topic = unique_topic("sec-mtls");
    create_topic(&env.kafka.plaintext_bootstrap(), &topic, 1, 1)
        .await
        .unwrap();
    env.kafka
        .acl(&[
            "--add",
            "--allow-principal",
            "User:CN=gregor-client",
            "--producer",
            "--consumer",
            "--topic",
            &topic,
            "--group",
            &format!("{topic}-group"),
        ])
        .await
        .unwrap();
    let config = mtls(&env);
    round_trip_on(&env, &topic, &config, config.clone()).await;

    let pki = env.kafka.pki();
    let no_cert = base(&env.kafka.ssl_bootstrap())
        .set("security.protocol", "SSL")
        .unwrap()
        .set("ssl.ca.location", pki.ca.display().to_string())
        .unwrap();
    let e = Admin::connect(&no_cert)
        .await
        .expect_err("the SSL listener requires a client certificate");
    env.seen.error(&e);
    assert!(
        matches!(
            &e,
            Error::Tls { failure: TlsFailure::RefusedByBroker, broker, .. }
                if *broker == env.kafka.ssl_bootstrap()
        ),
        "{e:?}"
    );
    assert!(!e.is_retriable(), "{e}");
}

/// A CA that did not sign the broker's certificate, and the system's CAs (which know nothing
/// of the test CA), are refused on the first connection, naming the broker and the reason.
async fn untrusted_ca(env: Arc<Env>) {
    let broker = env.kafka.sasl_ssl_bootstrap();
    let wrong_ca = sasl_ssl(&env, "admin", "PLAIN")
        .set(
            "ssl.ca.location",
            env.kafka.pki().untrusted_ca.display().to_string(),
        )
        .unwrap();
    let e = Producer::connect(&wrong_ca)
        .await
        .expect_err("an untrusted CA must be refused");
    env.seen.error(&e);
    assert!(
        matches!(&e, Error::Tls { failure: TlsFailure::UntrustedCertificate, broker: b, .. } if *b == broker),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(&broker) && text.contains("not signed by a trusted CA"),
        "{text}"
    );
    assert!(!e.is_retriable());

    // No ssl.ca.location: the system's roots, which do not include the test CA.
    let mut system = ClientConfig::new();
    for (k, v) in [
        ("bootstrap.servers", broker.as_str()),
        ("security.protocol", "SSL"),
    ] {
        system.insert(k, v.to_owned()).unwrap();
    }
    match Admin::connect(&system).await {
        Err(e @ Error::Tls { .. }) => {
            assert!(
                matches!(
                    e,
                    Error::Tls {
                        failure: TlsFailure::UntrustedCertificate,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        // A machine without any system CA file: the config error says what to set.
        Err(e @ Error::Config { .. }) => {
            assert!(e.to_string().contains("ssl.ca.location"), "{e}");
        }
        other => panic!("system roots must not trust the test CA: {other:?}"),
    }
}

/// The certificate names IP 127.0.0.1 only: `localhost` is a host-name mismatch, refused by
/// default (the consumer's first connection) and accepted, chain still checked, when
/// `ssl.endpoint.identification.algorithm` is empty.
async fn wrong_host_name(env: Arc<Env>) {
    let port = env
        .kafka
        .sasl_ssl_bootstrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let by_name = format!("localhost:{port}");
    let config = consumer_config(
        sasl_ssl(&env, "admin", "SCRAM-SHA-256")
            .set("bootstrap.servers", by_name.as_str())
            .unwrap(),
        "sec-host-group",
    );
    let Err(e) = Consumer::connect(&config).await else {
        panic!("a certificate without `localhost` must be refused for localhost")
    };
    env.seen.error(&e);
    assert!(
        matches!(&e, Error::Tls { failure: TlsFailure::HostNameMismatch, broker, .. } if *broker == by_name),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not name the host"), "{e}");

    let relaxed = config
        .set("ssl.endpoint.identification.algorithm", "")
        .unwrap();
    let admin = Admin::connect(&relaxed)
        .await
        .unwrap_or_else(|e| panic!("no host-name check: {e}"));
    assert!(!admin.describe_cluster().await.unwrap().brokers.is_empty());
    // The chain is still verified without the host-name check.
    let relaxed_wrong_ca = relaxed
        .set(
            "ssl.ca.location",
            env.kafka.pki().untrusted_ca.display().to_string(),
        )
        .unwrap();
    let e = Admin::connect(&relaxed_wrong_ca).await.unwrap_err();
    env.seen.error(&e);
    assert!(
        matches!(
            &e,
            Error::Tls {
                failure: TlsFailure::UntrustedCertificate,
                ..
            }
        ),
        "{e:?}"
    );
}

/// A wrong password is an authentication error that names the user and mechanism but never
/// the password (neither the one tried nor the real one), and is not retried.
async fn wrong_password(env: Arc<Env>, wrong: String) {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let config = sasl_ssl(&env, "bob", mechanism)
            .set("sasl.password", wrong.as_str())
            .unwrap();
        env.seen.debug(&config);
        let e = Producer::connect(&config)
            .await
            .expect_err("a wrong password must be refused");
        env.seen.error(&e);
        match &e {
            Error::Authentication {
                mechanism: m,
                username,
                broker,
                message,
            } => {
                assert_eq!(m, mechanism);
                assert_eq!(username, "bob");
                assert_eq!(*broker, env.kafka.sasl_ssl_bootstrap());
                assert!(message.contains("SASL_AUTHENTICATION_FAILED"), "{message}");
            }
            other => panic!("{mechanism}: expected an authentication error, got {other:?}"),
        }
        assert!(!e.is_retriable() && e.is_auth(), "{e}");
        let consumer = consumer_config(config, "sec-wrong-pw");
        let Err(e) = Consumer::connect(&consumer).await else {
            panic!("{mechanism}: the consumer must be refused too")
        };
        env.seen.error(&e);
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    }
}

/// Records what the dead-letter layer publishes.
#[derive(Default)]
struct Recorder(Mutex<Vec<DeadLetterRecord>>);

impl Publisher for Recorder {
    fn publish(&self, record: DeadLetterRecord) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(record);
            Ok(())
        })
    }
}

/// alice may describe one topic but not write it, and may read a topic but not the group: the
/// errors name the topic or the group, are not retried by the producer, the consumer, or the
/// handler's retry layer, and the dead-letter headers record them as fatal.
async fn acl_denials(env: Arc<Env>) {
    let no_write = unique_topic("sec-acl-write");
    let no_group = unique_topic("sec-acl-group");
    for t in [&no_write, &no_group] {
        create_topic(&env.kafka.plaintext_bootstrap(), t, 1, 1)
            .await
            .unwrap();
    }
    env.kafka
        .acl(&[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Describe",
            "--operation",
            "Read",
            "--topic",
            &no_write,
            "--topic",
            &no_group,
        ])
        .await
        .unwrap();
    let alice = sasl_ssl(&env, "alice", "SCRAM-SHA-512")
        .set("retries", "5")
        .unwrap();

    // Write denied.
    let producer = Producer::connect(&alice).await.unwrap();
    let e = producer
        .send(ProducerRecord::new(no_write.clone(), "denied"))
        .await
        .expect_err("alice may not write");
    env.seen.error(&e);
    assert_eq!(
        e.code(),
        Some(KafkaCode::TOPIC_AUTHORIZATION_FAILED),
        "{e:?}"
    );
    assert!(e.to_string().contains(&no_write), "{e}");
    assert!(!e.is_retriable() && e.is_auth());
    assert_eq!(producer.stats().retries, 0, "the producer retried {e}");

    // The same error inside a handler: the retry layer does not retry it, the dead-letter
    // layer publishes the record with the error and its class in the headers.
    let calls = Arc::new(Mutex::new(0u32));
    let recorder = Arc::new(Recorder::default());
    let svc = {
        let producer = producer.clone();
        let calls = Arc::clone(&calls);
        let topic = no_write.clone();
        let handler = handler_fn(move |_m: Message| {
            let producer = producer.clone();
            let calls = Arc::clone(&calls);
            let topic = topic.clone();
            async move {
                *calls.lock().unwrap() += 1;
                producer
                    .send(ProducerRecord::new(topic, "from a handler"))
                    .await
                    .map_err(BoxError::from)?;
                Ok::<(), BoxError>(())
            }
        });
        let publisher: Arc<dyn Publisher> = Arc::clone(&recorder) as Arc<dyn Publisher>;
        DeadLetterLayer::new(publisher).layer(
            RetryLayer::new()
                .max_attempts(5)
                .backoff(Duration::from_millis(10), 2.0)
                .layer(handler),
        )
    };
    let outcome = svc
        .oneshot(Message::new("orders", 0, 7).with_value(b"x".to_vec()))
        .await
        .expect("dead-lettered, not failed");
    assert_eq!(outcome, Outcome::DeadLettered);
    assert_eq!(
        *calls.lock().unwrap(),
        1,
        "the retry layer retried an authorization error"
    );
    let records = std::mem::take(&mut *recorder.0.lock().unwrap());
    assert_eq!(records.len(), 1);
    let headers = &records[0].headers;
    assert_eq!(
        headers.get_str(dead_letter::ERROR_CLASS),
        Some(ErrorClass::Fatal.as_str())
    );
    let error = headers.get_str(dead_letter::ERROR).unwrap();
    assert!(
        error.contains("TOPIC_AUTHORIZATION_FAILED") && error.contains(&no_write),
        "{error}"
    );
    assert_eq!(headers.get_str(dead_letter::RETRY_COUNT), Some("0"));
    producer.close().await.unwrap();

    // Group read denied: the topic is readable, the group is not.
    let group = format!("{no_group}-denied");
    let mut consumer = Consumer::connect(&consumer_config(alice, &group))
        .await
        .unwrap();
    consumer.subscribe(&[&no_group]).unwrap();
    let start = Instant::now();
    let e = loop {
        match consumer.poll(Duration::from_millis(200)).await {
            Err(e) => break e,
            Ok(batch) => assert!(batch.is_empty(), "read without the group's READ"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no group authorization error within 30 s"
        );
    };
    env.seen.error(&e);
    assert_eq!(
        e.code(),
        Some(KafkaCode::GROUP_AUTHORIZATION_FAILED),
        "{e:?}"
    );
    assert!(e.to_string().contains(&group), "{e}");
    assert!(!e.is_retriable() && e.is_auth());
}

/// Runs one scenario, turning its panic into a line of the final report. (In this task, not a
/// spawned one: a `Consumer` is `Send` but not `Sync`.)
async fn run(name: &'static str, f: LocalBoxFuture<'static, ()>) -> Option<String> {
    let start = Instant::now();
    let result = AssertUnwindSafe(f).catch_unwind().await;
    eprintln!("scenario {name}: {:.1} s", start.elapsed().as_secs_f64());
    match result {
        Ok(()) => None,
        Err(p) => {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".into());
            Some(format!("{name}: {why}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_broker_tls_sasl_acls_and_secrets() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish(),
    )
    .unwrap();

    let start = Instant::now();
    let kafka = SecureKafka::start().await.expect("a secured Kafka");
    eprintln!(
        "secured broker up in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let env = Arc::new(Env {
        kafka,
        seen: Seen::default(),
    });
    let wrong = format!("wrong-{}", unique_topic("pw"));

    let scenarios: Vec<(&'static str, LocalBoxFuture<'static, ()>)> = vec![
        (
            "SASL_SSL PLAIN",
            Box::pin(sasl_ssl_mechanism(Arc::clone(&env), "PLAIN")),
        ),
        (
            "SASL_SSL SCRAM-SHA-256",
            Box::pin(sasl_ssl_mechanism(Arc::clone(&env), "SCRAM-SHA-256")),
        ),
        (
            "SASL_SSL SCRAM-SHA-512",
            Box::pin(sasl_ssl_mechanism(Arc::clone(&env), "SCRAM-SHA-512")),
        ),
        ("SASL_PLAINTEXT", Box::pin(sasl_plaintext(Arc::clone(&env)))),
        ("mutual TLS", Box::pin(mutual_tls(Arc::clone(&env)))),
        ("untrusted CA", Box::pin(untrusted_ca(Arc::clone(&env)))),
        (
            "wrong host name",
            Box::pin(wrong_host_name(Arc::clone(&env))),
        ),
        (
            "wrong password",
            Box::pin(wrong_password(Arc::clone(&env), wrong.clone())),
        ),
        ("ACL denials", Box::pin(acl_denials(Arc::clone(&env)))),
    ];
    let failures: Vec<String> =
        futures::future::join_all(scenarios.into_iter().map(|(name, f)| run(name, f)))
            .await
            .into_iter()
            .flatten()
            .collect();
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );

    // Secrets: every password (real and wrong) and the private key's body.
    let mut secrets: BTreeMap<String, String> = ["admin", "alice", "bob"]
        .iter()
        .map(|n| {
            (
                format!("{n}'s password"),
                env.kafka.user(n).unwrap().password.clone(),
            )
        })
        .collect();
    secrets.insert("the wrong password".into(), wrong);
    let key = std::fs::read_to_string(&env.kafka.pki().client_key).unwrap();
    for (i, line) in key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .enumerate()
    {
        secrets.insert(format!("private key line {i}"), line.to_owned());
    }
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("SASL authenticated"),
        "the capture saw the client's logs"
    );
    let texts = env.seen.texts.lock().unwrap().join("\n");
    assert!(texts.contains("[redacted]"), "configs were captured");
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "{what} is in the logs");
        assert!(
            !texts.contains(secret.as_str()),
            "{what} is in a Debug or error text"
        );
    }
}
