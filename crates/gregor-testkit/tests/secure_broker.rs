//! The secured broker works with a client nobody here wrote (Kafka's console clients): SCRAM
//! and PLAIN over SASL_SSL, mutual TLS, and ACLs that refuse until granted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gregor_testkit::{SecureKafka, create_topic, tools, unique_topic};

fn client_properties(kafka: &SecureKafka, name: &str, lines: &[String]) -> PathBuf {
    let path = kafka
        .pki()
        .ca
        .parent()
        .unwrap()
        .join(format!("{name}.properties"));
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn sasl_ssl(kafka: &SecureKafka, user: &str, mechanism: &str) -> Vec<String> {
    let u = kafka.user(user).unwrap();
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    vec![
        "security.protocol=SASL_SSL".into(),
        format!("sasl.mechanism={mechanism}"),
        format!(
            "sasl.jaas.config={module} required username=\"{}\" password=\"{}\";",
            u.name, u.password
        ),
        "ssl.truststore.type=PEM".into(),
        format!("ssl.truststore.location={}", kafka.pki().ca.display()),
    ]
}

async fn produce(bootstrap: &str, topic: &str, props: &Path, lines: &str) -> Result<(), String> {
    tools::run(
        tools::class::CONSOLE_PRODUCER,
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--command-config",
            props.to_str().unwrap(),
            "--producer-property",
            "delivery.timeout.ms=6000",
            "--producer-property",
            "request.timeout.ms=5000",
            "--producer-property",
            "linger.ms=0",
            "--producer-property",
            "max.block.ms=5000",
        ],
        Some(lines.as_bytes()),
        Duration::from_secs(90),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn consume(
    bootstrap: &str,
    topic: &str,
    props: &Path,
    n: usize,
    idle_ms: u32,
) -> Vec<String> {
    let out = tools::run(
        tools::class::CONSOLE_CONSUMER,
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            &n.to_string(),
            "--timeout-ms",
            &idle_ms.to_string(),
            "--command-config",
            props.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(90),
    )
    .await
    .expect("console consumer");
    out.stdout.lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_tls_mtls_and_acls_are_enforced() {
    let kafka = SecureKafka::start().await.expect("a secured Kafka");
    let topic = unique_topic("secure");
    create_topic(&kafka.plaintext_bootstrap(), &topic, 1, 1)
        .await
        .unwrap();

    // SCRAM-SHA-512 over TLS as admin (a super user) works end to end.
    let admin = client_properties(
        &kafka,
        "admin-scram512",
        &sasl_ssl(&kafka, "admin", "SCRAM-SHA-512"),
    );
    produce(&kafka.sasl_ssl_bootstrap(), &topic, &admin, "one\ntwo\n")
        .await
        .expect("admin writes");
    assert_eq!(
        consume(&kafka.sasl_ssl_bootstrap(), &topic, &admin, 2, 30_000).await,
        ["one", "two"]
    );

    // alice has no ACLs: her write is refused. (The console producer logs send errors and
    // exits 0, so the proof is that nothing arrives.)
    let alice = client_properties(
        &kafka,
        "alice-scram256",
        &sasl_ssl(&kafka, "alice", "SCRAM-SHA-256"),
    );
    let _ = produce(
        &kafka.sasl_ssl_bootstrap(),
        &topic,
        &alice,
        "refused-write\n",
    )
    .await;

    // Granted WRITE, alice can produce (PLAIN this time).
    kafka
        .acl(&[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--operation",
            "Describe",
            "--topic",
            &topic,
        ])
        .await
        .unwrap();
    let alice_plain = client_properties(&kafka, "alice-plain", &sasl_ssl(&kafka, "alice", "PLAIN"));
    produce(&kafka.sasl_ssl_bootstrap(), &topic, &alice_plain, "three\n")
        .await
        .expect("alice writes once granted");

    // A wrong password is an authentication failure.
    let mut wrong = sasl_ssl(&kafka, "bob", "SCRAM-SHA-256");
    wrong[2] = "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"not-it\";".into();
    let wrong = client_properties(&kafka, "bob-wrong", &wrong);
    let _ = produce(
        &kafka.sasl_ssl_bootstrap(),
        &topic,
        &wrong,
        "bad-password-write\n",
    )
    .await;

    // Mutual TLS: the client certificate's subject is the principal.
    kafka
        .acl(&[
            "--add",
            "--allow-principal",
            "User:CN=gregor-client",
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--topic",
            &topic,
            "--group",
            "*",
        ])
        .await
        .unwrap();
    let mtls = client_properties(
        &kafka,
        "mtls",
        &[
            "security.protocol=SSL".into(),
            "ssl.truststore.type=PEM".into(),
            format!("ssl.truststore.location={}", kafka.pki().ca.display()),
            "ssl.keystore.type=PEM".into(),
            format!(
                "ssl.keystore.location={}",
                kafka.pki().client_keystore.display()
            ),
        ],
    );
    // Exactly what the authorised writers wrote: the refused writes never arrived.
    assert_eq!(
        consume(&kafka.ssl_bootstrap(), &topic, &mtls, 4, 5_000).await,
        ["one", "two", "three"]
    );

    // Secrets stay out of the broker's log.
    let log = std::fs::read_to_string(kafka.server_log()).unwrap();
    for name in ["admin", "alice", "bob"] {
        let password = &kafka.user(name).unwrap().password;
        assert!(
            !log.contains(password.as_str()),
            "{name}'s password is in the broker log"
        );
    }
    assert!(!format!("{kafka:?}").contains(&kafka.user("alice").unwrap().password));
}
