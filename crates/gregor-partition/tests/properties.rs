//! Every partitioner answers within `0..n` for any key, headers and count `n >= 1`, and with a
//! typed error (never a panic or a division by zero) for `n <= 0`.

use std::sync::Arc;

use gregor_partition::{
    Crc32, Error, Fnv1a, Fnv1aVariant, Keyless, Manual, Murmur2, NAMES, Partitioner, Priority,
    Random, RecordView, RoundRobin, Sticky, Strategy as Named, choose, hash,
};
use proptest::prelude::*;

fn all() -> Vec<Arc<dyn Partitioner>> {
    let mut v: Vec<Arc<dyn Partitioner>> = Vec::new();
    for keyless in [
        Keyless::Sticky,
        Keyless::RoundRobin,
        Keyless::Random,
        Keyless::Hash,
    ] {
        v.push(Arc::new(Murmur2::with_keyless(keyless)));
        v.push(Arc::new(Fnv1a::new(Fnv1aVariant::Sarama, keyless)));
        v.push(Arc::new(Fnv1a::new(Fnv1aVariant::Unsigned, keyless)));
        v.push(Arc::new(Crc32::new(keyless)));
    }
    v.push(Arc::new(Sticky::new()));
    v.push(Arc::new(RoundRobin::new()));
    v.push(Arc::new(Random::new()));
    for (name, _) in NAMES {
        v.push(Named::named(name).unwrap().for_topic("t"));
    }
    v
}

fn counts() -> impl Strategy<Value = i32> {
    prop_oneof![
        1..=16_i32,
        1..=100_000_i32,
        Just(i32::MAX),
        Just(1),
        Just(2)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn answers_lie_within_the_topic(
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        headers in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..8)), 0..4),
        high in any::<bool>(),
        n in counts(),
        sealed in any::<i32>(),
    ) {
        let mut headers = headers;
        if high {
            headers.push(("priority".to_owned(), b"high".to_vec()));
        }
        let record = RecordView::new(key.as_deref()).with_headers(&headers);
        for p in all() {
            // A sealed batch notice, even for a partition that does not exist, never breaks it.
            p.batch_sealed(sealed);
            match p.partition(&record, n) {
                Ok(got) => prop_assert!((0..n).contains(&got), "{p:?} gave {got} of {n}"),
                Err(Error::PartitionRequired) => {}
                Err(Error::TooFewPartitions { partitions, .. }) => prop_assert_eq!(partitions, 1),
                Err(e) => prop_assert!(false, "{p:?}: unexpected {e}"),
            }
            prop_assert_eq!(choose(&*p, &record, n).is_ok(), p.partition(&record, n).is_ok());
        }
        let priority = Priority::new(0);
        if n >= 2 {
            let got = priority.partition(&record, n).unwrap();
            prop_assert_eq!(got == 0, high);
        }
    }

    #[test]
    fn counts_below_one_are_typed_errors(
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        n in i32::MIN..=0,
    ) {
        let record = RecordView::new(key.as_deref());
        for p in all() {
            prop_assert_eq!(p.partition(&record, n), Err(Error::NoPartitions { partitions: n }));
        }
        prop_assert_eq!(Manual.partition(&record, n), Err(Error::NoPartitions { partitions: n }));
    }

    #[test]
    fn keyed_placement_is_a_function_of_the_key(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        n in counts(),
    ) {
        let r = RecordView::new(Some(&key));
        let m = Murmur2::new();
        prop_assert_eq!(m.partition(&r, n).unwrap(), m.partition(&r, n).unwrap());
        prop_assert_eq!(
            m.partition(&r, n).unwrap(),
            (hash::murmur2(&key) & 0x7fff_ffff) % n
        );
        prop_assert_eq!(
            Crc32::consistent().partition(&r, n).unwrap() as u32,
            hash::crc32(&key) % n as u32
        );
        let sarama = Fnv1a::new(Fnv1aVariant::Sarama, Keyless::Random).partition(&r, n).unwrap();
        let signed = (hash::fnv1a(&key) as i32) % n;
        prop_assert_eq!(sarama, signed.abs());
    }
}

#[test]
fn shared_across_threads_stays_in_range() {
    let parts: Vec<Arc<dyn Partitioner>> = all();
    std::thread::scope(|s| {
        for t in 0..4 {
            let parts = &parts;
            s.spawn(move || {
                for i in 0..2_000 {
                    let key = format!("k{t}-{i}");
                    let key = (i % 3 != 0).then_some(key.as_bytes());
                    for p in parts {
                        if let Ok(got) = p.partition(&RecordView::new(key), 7) {
                            assert!((0..7).contains(&got), "{p:?}");
                            if i % 10 == 0 {
                                p.batch_sealed(got);
                            }
                        }
                    }
                }
            });
        }
    });
}
