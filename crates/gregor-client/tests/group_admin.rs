//! Group administration on the real broker: a group is listed and described with its member's
//! assignment while the member runs; its committed offsets and lag match what Kafka's own
//! consumer-groups tool reports; moving the offsets is refused while the member is there and
//! done once it left.

mod consumer_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use consumer_support::{bootstrap, config, create_topic, produce, unique_group};
use gregor_client::{Admin, ClientConfig, Consumer, TopicPartition};
use gregor_testkit::tools::{self, class};
use gregor_testkit::unique_topic;

/// partition -> (current offset, log end offset, lag) of `--describe`.
fn tool_rows(stdout: &str, topic: &str) -> BTreeMap<i32, (String, String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[1] == topic).then(|| {
                (
                    f[2].parse().unwrap(),
                    (f[3].to_owned(), f[4].to_owned(), f[5].to_owned()),
                )
            })
        })
        .collect()
}

fn dash(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_described_lagged_and_reset() {
    let bootstrap = bootstrap().await;
    let topic = unique_topic("gadm");
    create_topic(&bootstrap, &topic, 3, &[]).await;
    produce(&bootstrap, &topic, 3, 20, 10, None).await;
    let group = unique_group("gadm-g");
    let admin = Admin::connect(
        &ClientConfig::new()
            .set("bootstrap.servers", bootstrap.as_str())
            .unwrap(),
    )
    .await
    .unwrap();

    // A member that read everything and committed 5 / 12 / nothing.
    let mut consumer = Consumer::connect(
        &config(&bootstrap, &group)
            .set("enable.auto.commit", "false")
            .unwrap(),
    )
    .await
    .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let start = Instant::now();
    let mut seen = 0;
    while seen < 60 {
        assert!(start.elapsed() < Duration::from_secs(30), "read {seen}/60");
        seen += consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .len();
    }
    consumer
        .commit_offsets(&[(&topic, 0, 5), (&topic, 1, 12)])
        .await
        .unwrap();
    let (member_id, _) = consumer.generation().unwrap();

    let listed = admin.list_groups().await.unwrap();
    let ours = listed.iter().find(|g| g.group == group).expect("listed");
    assert_eq!(ours.protocol_type, "consumer");
    assert_eq!(ours.state, "Stable");

    let d = admin.describe_group(&group).await.unwrap();
    assert_eq!(d.state, "Stable");
    assert!(d.is_active());
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, member_id);
    assert_eq!(
        d.members[0].assignment,
        (0..3)
            .map(|p| TopicPartition::new(&topic, p))
            .collect::<Vec<_>>()
    );

    let committed = admin.committed_offsets(&group).await.unwrap();
    assert_eq!(
        committed,
        BTreeMap::from([
            (TopicPartition::new(&topic, 0), 5),
            (TopicPartition::new(&topic, 1), 12)
        ])
    );

    let lag = admin.group_lag(&group).await.unwrap();
    assert_eq!(lag.len(), 3, "committed or assigned partitions: {lag:?}");
    assert_eq!(
        lag.iter().map(|l| l.lag).collect::<Vec<_>>(),
        vec![Some(15), Some(8), None]
    );
    assert!(lag.iter().all(|l| l.end_offset == Some(20)));
    assert!(
        lag.iter()
            .all(|l| l.member.as_deref() == Some(member_id.as_str()))
    );
    // Kafka's own tool computes the same numbers.
    let out = tools::run(
        class::CONSUMER_GROUPS,
        &[
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--group",
            &group,
        ],
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let rows = tool_rows(&out.stdout, &topic);
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    for l in &lag {
        assert_eq!(
            rows[&l.partition],
            (dash(l.committed), dash(l.end_offset), dash(l.lag)),
            "partition {}: {}",
            l.partition,
            out.stdout
        );
    }

    // Moving the offsets of a group with a member is refused and changes nothing.
    let to_zero: Vec<(TopicPartition, i64)> = (0..3)
        .map(|p| (TopicPartition::new(&topic, p), 0))
        .collect();
    let e = admin
        .reset_group_offsets(&group, &to_zero)
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.0), Some(68), "NON_EMPTY_GROUP: {e}");
    assert!(e.to_string().contains("active member"), "{e}");
    assert_eq!(admin.committed_offsets(&group).await.unwrap(), committed);

    consumer.close().await.unwrap();
    let d = admin.describe_group(&group).await.unwrap();
    assert_eq!(d.state, "Empty");
    assert!(!d.is_active());
    admin.reset_group_offsets(&group, &to_zero).await.unwrap();
    let moved = admin.committed_offsets(&group).await.unwrap();
    assert_eq!(moved.len(), 3);
    assert!(moved.values().all(|o| *o == 0), "{moved:?}");
    let lag = admin.group_lag(&group).await.unwrap();
    assert_eq!(lag.iter().filter_map(|l| l.lag).sum::<i64>(), 60);
    assert!(lag.iter().all(|l| l.member.is_none()));

    // A group nobody used: Dead, no members, nothing committed.
    let never = unique_group("gadm-none");
    let d = admin.describe_group(&never).await.unwrap();
    assert_eq!(d.state, "Dead");
    assert!(admin.committed_offsets(&never).await.unwrap().is_empty());
    assert!(admin.group_lag(&never).await.unwrap().is_empty());
}
