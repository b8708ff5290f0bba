//! Partition assignors (range, roundrobin, cooperative-sticky) and the consumer protocol's
//! subscription and assignment bytes, as the Java client writes them, so a group may mix
//! gregor and Java consumers whichever member leads.
//!
//! ```text
//! JoinGroup metadata = i16 version (3) + ConsumerProtocolSubscription v3
//!     topics, user_data (cooperative-sticky: i32 generation), owned partitions, generation, rack
//! SyncGroup assignment = i16 version (3) + ConsumerProtocolAssignment v3
//!     partitions by topic, user_data (none)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    consumer_protocol_assignment, consumer_protocol_subscription,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::wire::decode_embedded;

/// A topic and partition.
pub(crate) type TopicPartition = (String, i32);

/// The consumer protocol version gregor writes (Java 3.x and 4.x write 3).
const PROTOCOL_VERSION: i16 = 3;

/// What one member sent in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Subscription {
    pub(crate) topics: Vec<String>,
    pub(crate) owned: Vec<TopicPartition>,
    /// The generation its owned partitions are from (-1: none).
    pub(crate) generation: i32,
    pub(crate) user_data: Option<Bytes>,
}

/// A member as the leader sees it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) subscription: Subscription,
}

impl Member {
    /// Java's member order: static members by instance id, then dynamic ones by member id.
    fn sort_key(&self) -> (bool, &str) {
        match &self.instance_id {
            Some(i) => (false, i.as_str()),
            None => (true, self.id.as_str()),
        }
    }
}

/// Assignment per member id.
pub(crate) type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Whether an assignor supports cooperative rebalancing.
pub(crate) fn is_cooperative(name: &str) -> bool {
    name == "cooperative-sticky"
}

/// Runs the assignor `name` over `members` with `partitions` (topic -> partition count).
pub(crate) fn assign(
    name: &str,
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut out: Assignment = members.iter().map(|m| (m.id.clone(), Vec::new())).collect();
    match name {
        "roundrobin" => round_robin(&members, partitions, &mut out),
        "cooperative-sticky" => sticky(&members, partitions, &mut out),
        _ => range(&members, partitions, &mut out),
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn subscribes(m: &Member, topic: &str) -> bool {
    m.subscription.topics.iter().any(|t| t == topic)
}

/// Java's RangeAssignor: per topic, consecutive ranges to the sorted subscribers, the first
/// `n % c` members one extra.
fn range(members: &[&Member], partitions: &BTreeMap<String, i32>, out: &mut Assignment) {
    for (topic, &n) in partitions {
        let subs: Vec<&&Member> = members.iter().filter(|m| subscribes(m, topic)).collect();
        if subs.is_empty() {
            continue;
        }
        let c = subs.len() as i32;
        let (per, extra) = (n / c, n % c);
        for (i, m) in subs.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let list = out.entry(m.id.clone()).or_default();
            list.extend((start..start + len).map(|p| (topic.clone(), p)));
        }
    }
}

/// Java's RoundRobinAssignor: every partition, sorted by topic then number, to the next
/// sorted member (circularly) that subscribes to its topic.
fn round_robin(members: &[&Member], partitions: &BTreeMap<String, i32>, out: &mut Assignment) {
    if members.is_empty() {
        return;
    }
    let mut next = 0usize;
    for (topic, &n) in partitions {
        if !members.iter().any(|m| subscribes(m, topic)) {
            continue;
        }
        for p in 0..n {
            while !subscribes(members[next % members.len()], topic) {
                next += 1;
            }
            let m = members[next % members.len()];
            out.entry(m.id.clone())
                .or_default()
                .push((topic.clone(), p));
            next += 1;
        }
    }
}

/// Cooperative-sticky: members keep what they own up to a balanced quota, the rest is spread
/// over the members with the fewest partitions, and a partition that moves from one member to
/// another is held back this round (its owner revokes it first; the follow-up rebalance hands
/// it over). So only moved partitions are ever revoked.
fn sticky(members: &[&Member], partitions: &BTreeMap<String, i32>, out: &mut Assignment) {
    let all: BTreeSet<TopicPartition> = partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    // Valid claims: a subscribed, existing partition; on conflict the higher generation wins,
    // and equal generations both lose the claim.
    let mut claims: HashMap<TopicPartition, (i32, Option<String>)> = HashMap::new();
    for m in members {
        for tp in &m.subscription.owned {
            if !all.contains(tp) || !subscribes(m, &tp.0) {
                continue;
            }
            let g = m.subscription.generation;
            match claims.get(tp) {
                None => {
                    claims.insert(tp.clone(), (g, Some(m.id.clone())));
                }
                Some((other, _)) if g > *other => {
                    claims.insert(tp.clone(), (g, Some(m.id.clone())));
                }
                Some((other, _)) if g == *other => {
                    claims.insert(tp.clone(), (g, None));
                }
                Some(_) => {}
            }
        }
    }
    let mut owned: BTreeMap<&str, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.id.as_str(), Vec::new()))
        .collect();
    for (tp, (_, who)) in &claims {
        if let Some(who) = who
            && let Some(list) = owned.get_mut(who.as_str())
        {
            list.push(tp.clone());
        }
    }
    for list in owned.values_mut() {
        list.sort();
    }
    let same_topics = members.windows(2).all(|w| {
        let a: BTreeSet<&String> = w[0].subscription.topics.iter().collect();
        let b: BTreeSet<&String> = w[1].subscription.topics.iter().collect();
        a == b
    });
    let mut assigned: BTreeMap<&str, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.id.as_str(), Vec::new()))
        .collect();
    let eligible_all: BTreeSet<TopicPartition> = all
        .iter()
        .filter(|tp| members.iter().any(|m| subscribes(m, &tp.0)))
        .cloned()
        .collect();
    if same_topics && !members.is_empty() {
        let total = eligible_all.len();
        let count = members.len();
        let min = total / count;
        let mut at_max = total % count;
        // Members owning the most keep the extra slots, so fewer partitions move.
        let mut order: Vec<&&Member> = members.iter().collect();
        order.sort_by_key(|m| std::cmp::Reverse(owned[m.id.as_str()].len()));
        for m in order {
            let mine = &owned[m.id.as_str()];
            let quota = if at_max > 0 && mine.len() > min {
                at_max -= 1;
                min + 1
            } else {
                min
            };
            assigned.insert(m.id.as_str(), mine.iter().take(quota).cloned().collect());
        }
        let taken: BTreeSet<TopicPartition> = assigned.values().flatten().cloned().collect();
        let mut free: Vec<TopicPartition> = eligible_all.difference(&taken).cloned().collect();
        free.sort();
        // Fill everyone to `min` first, then hand the remaining extra slots out.
        for tp in free {
            let target = members
                .iter()
                .map(|m| m.id.as_str())
                .min_by_key(|id| (assigned[id].len(), *id));
            if let Some(id) = target
                && let Some(list) = assigned.get_mut(id)
            {
                list.push(tp);
            }
        }
    } else {
        for m in members {
            let list = assigned.entry(m.id.as_str()).or_default();
            list.extend(owned[m.id.as_str()].iter().cloned());
        }
        let taken: BTreeSet<TopicPartition> = assigned.values().flatten().cloned().collect();
        for tp in eligible_all.difference(&taken) {
            let target = members
                .iter()
                .filter(|m| subscribes(m, &tp.0))
                .map(|m| m.id.as_str())
                .min_by_key(|id| (assigned[id].len(), *id));
            if let Some(id) = target
                && let Some(list) = assigned.get_mut(id)
            {
                list.push(tp.clone());
            }
        }
        // Balance: move from the fullest to an eligible member with at least two fewer.
        for _ in 0..eligible_all.len() {
            let Some((from, tp, to)) = members.iter().find_map(|m| {
                let mine = &assigned[m.id.as_str()];
                mine.iter().rev().find_map(|tp| {
                    members
                        .iter()
                        .filter(|o| o.id != m.id && subscribes(o, &tp.0))
                        .find(|o| assigned[o.id.as_str()].len() + 1 < mine.len())
                        .map(|o| (m.id.as_str(), tp.clone(), o.id.as_str()))
                })
            }) else {
                break;
            };
            if let Some(list) = assigned.get_mut(from) {
                list.retain(|x| *x != tp);
            }
            if let Some(list) = assigned.get_mut(to) {
                list.push(tp);
            }
        }
    }
    // Cooperative: a partition claimed by another member is handed over only after that member
    // revoked it, in the next rebalance.
    for (id, list) in assigned {
        let kept: Vec<TopicPartition> = list
            .into_iter()
            .filter(|tp| {
                members
                    .iter()
                    .filter(|m| m.id != id)
                    .all(|m| !m.subscription.owned.contains(tp))
            })
            .collect();
        out.insert(id.to_owned(), kept);
    }
}

/// Encodes a subscription for the JoinGroup metadata of assignor `assignor`.
pub(crate) fn encode_subscription(assignor: &str, sub: &Subscription) -> Bytes {
    let user_data = if is_cooperative(assignor) && sub.generation >= 0 {
        Some(Bytes::copy_from_slice(&sub.generation.to_be_bytes()))
    } else {
        None
    };
    let message = ConsumerProtocolSubscription::default()
        .with_topics(
            sub.topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_user_data(user_data)
        .with_owned_partitions(
            group(&sub.owned)
                .into_iter()
                .map(|(t, ps)| {
                    consumer_protocol_subscription::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_generation_id(sub.generation)
        .with_rack_id(None);
    encode(&message)
}

/// Decodes a member's JoinGroup metadata (any version Java writes).
pub(crate) fn decode_subscription(data: &Bytes) -> Result<Subscription, String> {
    let (version, body) = split_version(data)?;
    let m: ConsumerProtocolSubscription =
        decode_embedded("ConsumerProtocolSubscription", body, version)?;
    let mut generation = m.generation_id;
    // Older Java cooperative-sticky members carry their generation in user data only.
    if generation < 0
        && let Some(ud) = &m.user_data
        && ud.len() >= 4
    {
        generation = i32::from_be_bytes([ud[0], ud[1], ud[2], ud[3]]);
    }
    // Owned partitions are a set (Java writes its assigned set): a partition a member lists
    // twice is one claim. Kept twice, it would conflict with itself in the cooperative-sticky
    // assignor, which drops claims of equal generation, and the member would lose it.
    let mut seen: HashSet<(&str, i32)> = HashSet::new();
    let mut owned: Vec<TopicPartition> = Vec::new();
    for tp in &m.owned_partitions {
        for &p in &tp.partitions {
            if seen.insert((tp.topic.0.as_str(), p)) {
                owned.push((tp.topic.0.to_string(), p));
            }
        }
    }
    Ok(Subscription {
        topics: m.topics.iter().map(|t| t.to_string()).collect(),
        owned,
        generation,
        user_data: m.user_data,
    })
}

/// Encodes one member's assignment for SyncGroup.
pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Bytes {
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            group(partitions)
                .into_iter()
                .map(|(t, ps)| {
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_user_data(None);
    encode(&message)
}

/// Decodes the assignment SyncGroup returned (empty bytes: nothing assigned).
pub(crate) fn decode_assignment(data: &Bytes) -> Result<Vec<TopicPartition>, String> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let (version, body) = split_version(data)?;
    let m: ConsumerProtocolAssignment =
        decode_embedded("ConsumerProtocolAssignment", body, version)?;
    let mut out: Vec<TopicPartition> = m
        .assigned_partitions
        .iter()
        .flat_map(|tp| {
            let t = tp.topic.0.to_string();
            tp.partitions.iter().map(move |p| (t.clone(), *p))
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn split_version(data: &Bytes) -> Result<(i16, Bytes), String> {
    if data.len() < 2 {
        return Err(format!("{} bytes, too short for a version", data.len()));
    }
    let version = i16::from_be_bytes([data[0], data[1]]);
    if version < 0 {
        return Err(format!("version {version}"));
    }
    // Newer versions only add fields at the end: read them as the highest we know, as Java does.
    Ok((version.min(PROTOCOL_VERSION), data.slice(2..)))
}

fn encode<M: Encodable>(message: &M) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(PROTOCOL_VERSION);
    // Encoding our own in-memory message cannot fail at a version it supports; an error
    // would leave the version alone, which every reader refuses, never a wrong assignment.
    if let Err(e) = message.encode(&mut buf, PROTOCOL_VERSION) {
        tracing::error!(error = %e, "encoding consumer protocol message");
    }
    buf.freeze()
}

fn group(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        out.entry(t.clone()).or_default().push(*p);
    }
    for ps in out.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)], generation: i32) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                owned: owned.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect(),
                generation,
                user_data: None,
            },
        }
    }

    fn parts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn ids(a: &Assignment, id: &str) -> Vec<i32> {
        a[id].iter().map(|(_, p)| *p).collect()
    }

    #[test]
    fn range_matches_java() {
        // Java: 7 partitions over 3 members -> [0,1,2], [3,4], [5,6].
        let ms = [
            member("c", &["t"], &[], -1),
            member("a", &["t"], &[], -1),
            member("b", &["t"], &[], -1),
        ];
        let a = assign("range", &ms, &parts(&[("t", 7)]));
        assert_eq!(ids(&a, "a"), vec![0, 1, 2]);
        assert_eq!(ids(&a, "b"), vec![3, 4]);
        assert_eq!(ids(&a, "c"), vec![5, 6]);
    }

    #[test]
    fn roundrobin_matches_java() {
        let ms = [
            member("b", &["t", "u"], &[], -1),
            member("a", &["t", "u"], &[], -1),
        ];
        let a = assign("roundrobin", &ms, &parts(&[("t", 3), ("u", 2)]));
        // t0 a, t1 b, t2 a, u0 b, u1 a
        assert_eq!(
            a["a"],
            vec![("t".into(), 0), ("t".into(), 2), ("u".into(), 1)]
        );
        assert_eq!(a["b"], vec![("t".into(), 1), ("u".into(), 0)]);
    }

    #[test]
    fn static_members_sort_by_instance_id() {
        let mut x = member("zzz", &["t"], &[], -1);
        x.instance_id = Some("a-instance".into());
        let y = member("aaa", &["t"], &[], -1);
        let a = assign("range", &[y, x], &parts(&[("t", 2)]));
        assert_eq!(ids(&a, "zzz"), vec![0]);
        assert_eq!(ids(&a, "aaa"), vec![1]);
    }

    #[test]
    fn cooperative_sticky_moves_only_what_it_must_in_two_rounds() {
        let t = "t";
        let owned_a: Vec<(&str, i32)> = (0..3).map(|p| (t, p)).collect();
        let owned_b: Vec<(&str, i32)> = (3..6).map(|p| (t, p)).collect();
        let ms = [
            member("a", &[t], &owned_a, 4),
            member("b", &[t], &owned_b, 4),
            member("c", &[t], &[], -1),
        ];
        let round1 = assign("cooperative-sticky", &ms, &parts(&[(t, 6)]));
        // a and b each give one up; c gets nothing until they have revoked.
        assert_eq!(round1["a"].len(), 2);
        assert_eq!(round1["b"].len(), 2);
        assert!(round1["c"].is_empty());
        assert!(
            round1["a"]
                .iter()
                .all(|tp| owned_a.contains(&(tp.0.as_str(), tp.1)))
        );
        let owned = |id: &str| -> Vec<(&str, i32)> {
            round1[id].iter().map(|(t, p)| (t.as_str(), *p)).collect()
        };
        let ms2 = [
            member("a", &[t], &owned("a"), 5),
            member("b", &[t], &owned("b"), 5),
            member("c", &[t], &[], 5),
        ];
        let round2 = assign("cooperative-sticky", &ms2, &parts(&[(t, 6)]));
        assert_eq!(round2["a"], round1["a"]);
        assert_eq!(round2["b"], round1["b"]);
        assert_eq!(ids(&round2, "c").len(), 2);
        let mut all: Vec<i32> = round2.values().flatten().map(|(_, p)| *p).collect();
        all.sort_unstable();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn subscriptions_round_trip_through_the_java_layout() {
        let sub = Subscription {
            topics: vec!["orders".into(), "users".into()],
            owned: vec![("orders".into(), 2), ("orders".into(), 0)],
            generation: 9,
            user_data: None,
        };
        let bytes = encode_subscription("cooperative-sticky", &sub);
        assert_eq!(&bytes[..2], &[0, 3]);
        let back = decode_subscription(&bytes).unwrap();
        assert_eq!(back.topics, sub.topics);
        assert_eq!(back.owned, vec![("orders".into(), 0), ("orders".into(), 2)]);
        assert_eq!(back.generation, 9);
        assert_eq!(back.user_data.as_deref(), Some(&9i32.to_be_bytes()[..]));
        let a = encode_assignment(&[("t".into(), 1), ("t".into(), 0), ("u".into(), 5)]);
        assert_eq!(
            decode_assignment(&a).unwrap(),
            vec![("t".into(), 0), ("t".into(), 1), ("u".into(), 5)]
        );
    }

    #[test]
    fn a_version_0_subscription_from_an_old_client_decodes() {
        // version 0: topics ["t"], user data null.
        let bytes = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = decode_subscription(&bytes).unwrap();
        assert_eq!(s.topics, vec!["t".to_owned()]);
        assert_eq!(s.generation, -1);
    }

    /// fuzz/findings/assignment/duplicate-owned-partition.bin: a subscription listing an owned
    /// partition twice. It is one claim: the member keeps the partition.
    #[test]
    fn an_owned_partition_listed_twice_is_one_claim() {
        let finding = Bytes::from_static(include_bytes!(
            "../../../../fuzz/findings/assignment/duplicate-owned-partition.bin"
        ));
        let s = decode_subscription(&finding).unwrap();
        let unique: BTreeSet<&TopicPartition> = s.owned.iter().collect();
        assert_eq!(unique.len(), s.owned.len(), "{:?}", s.owned);
        assert!(!s.owned.is_empty());

        let sub = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_owned_partitions(vec![
                consumer_protocol_subscription::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![1, 0, 1]),
                consumer_protocol_subscription::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![0]),
            ])
            .with_generation_id(7);
        let a = decode_subscription(&encode(&sub)).unwrap();
        assert_eq!(a.owned, vec![("t".into(), 1), ("t".into(), 0)]);
        // The member that listed them twice keeps both; the newcomer waits for nothing.
        let b = member("b", &["t"], &[], 7);
        let a = Member {
            id: "a".into(),
            instance_id: None,
            subscription: a,
        };
        let out = assign("cooperative-sticky", &[a, b], &parts(&[("t", 4)]));
        assert_eq!(ids(&out, "a"), vec![0, 1]);
        assert_eq!(ids(&out, "b"), vec![2, 3]);
    }

    fn owned_lists() -> impl Strategy<Value = Vec<(Vec<(u8, i32)>, i32)>> {
        proptest::collection::vec(
            (
                proptest::collection::vec((0u8..3, -1i32..6), 0..10),
                -1i32..3,
            ),
            1..5,
        )
    }

    proptest! {
        /// Whatever members claim (duplicates, conflicts, partitions that do not exist, topics
        /// they do not subscribe to), no partition goes to two members, and the cooperative
        /// assignor never hands a partition to one member while another still owns it.
        #[test]
        fn no_partition_goes_to_two_members(lists in owned_lists(), name in prop::sample::select(vec!["range", "roundrobin", "cooperative-sticky"])) {
            let topics = ["t0", "t1", "t2"];
            let ms: Vec<Member> = lists
                .iter()
                .enumerate()
                .map(|(i, (owned, generation))| {
                    let sub = Subscription {
                        topics: topics[..1 + i % 3].iter().map(|t| (*t).to_owned()).collect(),
                        owned: owned.iter().map(|&(t, p)| (topics[t as usize].to_owned(), p)).collect(),
                        generation: *generation,
                        user_data: None,
                    };
                    // Straight in, duplicates included: the assignor copes without the decoder.
                    Member { id: format!("m{i}"), instance_id: None, subscription: sub }
                })
                .collect();
            let a = assign(name, &ms, &parts(&[("t0", 4), ("t1", 3), ("t2", 2)]));
            let mut seen = BTreeSet::new();
            for (id, list) in &a {
                let m = ms.iter().find(|m| &m.id == id).unwrap();
                for tp in list {
                    prop_assert!(seen.insert(tp.clone()), "{:?} twice in {:?}", tp, a);
                    prop_assert!(subscribes(m, &tp.0));
                    if name == "cooperative-sticky" {
                        prop_assert!(ms.iter().all(|o| &o.id == id || !o.subscription.owned.contains(tp)));
                    }
                }
            }
        }

        #[test]
        fn member_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let b = Bytes::from(bytes);
            if let Ok(s) = decode_subscription(&b) {
                let unique: BTreeSet<&TopicPartition> = s.owned.iter().collect();
                prop_assert_eq!(unique.len(), s.owned.len());
            }
            if let Ok(a) = decode_assignment(&b) {
                prop_assert!(a.windows(2).all(|w| w[0] < w[1]));
            }
        }

        /// Every assignor hands out each partition to exactly one subscribed member, and
        /// range/roundrobin/sticky stay balanced (within one) when all subscribe the same.
        #[test]
        fn assignments_are_complete_and_balanced(n_members in 1usize..6, n_parts in 0i32..20, name in prop::sample::select(vec!["range", "roundrobin", "cooperative-sticky"])) {
            let ms: Vec<Member> = (0..n_members).map(|i| member(&format!("m{i}"), &["t"], &[], -1)).collect();
            let a = assign(name, &ms, &parts(&[("t", n_parts)]));
            let mut all: Vec<i32> = a.values().flatten().map(|(_, p)| *p).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n_parts).collect::<Vec<_>>());
            let sizes: Vec<usize> = a.values().map(Vec::len).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }
}
