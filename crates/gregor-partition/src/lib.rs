#![doc = include_str!("../README.md")]

mod builtin;
mod error;
pub mod hash;
mod keyless;
mod strategy;

use std::collections::BTreeMap;
use std::fmt;

pub use builtin::{
    Crc32, Fnv1a, Fnv1aVariant, Manual, Murmur2, Priority, Random, RoundRobin, Sticky,
};
pub use error::{Error, Result};
pub use keyless::Keyless;
pub use strategy::{NAMES, Strategy};

/// Chooses a partition for a record.
///
/// A partitioner instance belongs to one topic (a [`Strategy`] makes one per topic), so the
/// state it keeps (the sticky partition, a round-robin counter) is that topic's. It is shared
/// behind an `Arc` by every task that sends to the topic: methods take `&self`, and the
/// built-ins keep their state in atomics, with no lock per record.
///
/// `partition` must return a partition in `0..partitions`, or an error; a count below 1 is
/// [`Error::NoPartitions`]. Producers call [`choose`], which checks both.
///
/// ```
/// use gregor_partition::{Error, Partitioner, RecordView, Result};
///
/// /// Tenants named in a `tenant` header get partition = tenant number, modulo the count.
/// #[derive(Debug)]
/// struct ByTenant;
///
/// impl Partitioner for ByTenant {
///     fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32> {
///         let tenant = record
///             .header("tenant")
///             .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i32>().ok())
///             .ok_or_else(|| Error::Custom { message: "no numeric tenant header".into() })?;
///         Ok(tenant.rem_euclid(partitions.max(1)))
///     }
/// }
///
/// let headers = [("tenant", "14")];
/// let p = gregor_partition::choose(&ByTenant, &RecordView::new(None).with_headers(&headers), 6)?;
/// assert_eq!(p, 2);
/// # Ok::<(), gregor_partition::Error>(())
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The partition in `0..partitions` for `record`.
    fn partition(&self, record: &RecordView<'_>, partitions: i32) -> Result<i32>;

    /// The producer sealed a batch for `partition` (full, or its linger time passed) and is
    /// sending it. Sticky partitioners move on to another partition (KIP-480); the default
    /// does nothing.
    fn batch_sealed(&self, partition: i32) {
        let _ = partition;
    }
}

/// Calls `partitioner` and checks its answer: the count must be at least 1 and the partition
/// in `0..partitions`; a custom partitioner that answers outside the range is an
/// [`Error::Custom`], never an index out of bounds further on.
pub fn choose(
    partitioner: &dyn Partitioner,
    record: &RecordView<'_>,
    partitions: i32,
) -> Result<i32> {
    error::check_count(partitions)?;
    let p = partitioner.partition(record, partitions)?;
    if (0..partitions).contains(&p) {
        Ok(p)
    } else {
        Err(Error::Custom {
            message: format!(
                "partitioner {partitioner:?} returned partition {p}, outside 0..{partitions}"
            ),
        })
    }
}

/// Header lookup for partitioners: the value of the last header with a name, as the Java
/// client's `Headers::lastHeader`.
pub trait Headers {
    /// The value of the last header named `name`.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

impl Headers for () {
    fn header(&self, _name: &str) -> Option<&[u8]> {
        None
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        Headers::header(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        Headers::header(self.as_slice(), name)
    }
}

impl<V: AsRef<[u8]>> Headers for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(AsRef::as_ref)
    }
}

/// What a partitioner sees of a record: its key and a header lookup. Clients adapt their own
/// record types to it without copying.
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    key: Option<&'a [u8]>,
    headers: &'a (dyn Headers + 'a),
}

impl<'a> RecordView<'a> {
    /// A record with `key` (`None`: no key; `Some(b"")` is an empty key) and no headers.
    pub fn new(key: Option<&'a [u8]>) -> RecordView<'a> {
        RecordView { key, headers: &() }
    }

    /// The same record with `headers`.
    pub fn with_headers(self, headers: &'a (dyn Headers + 'a)) -> RecordView<'a> {
        RecordView { headers, ..self }
    }

    /// The key, if the record has one.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value of the last header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.header(name)
    }
}

impl fmt::Debug for RecordView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordView")
            .field("key", &self.key.map(String::from_utf8_lossy))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_answer_with_the_last_value() {
        let list = vec![("priority", "low"), ("other", "x"), ("priority", "high")];
        let r = RecordView::new(None).with_headers(&list);
        assert_eq!(r.header("priority"), Some(&b"high"[..]));
        assert_eq!(r.header("missing"), None);
        let mut map = BTreeMap::new();
        map.insert("priority".to_owned(), b"high".to_vec());
        assert_eq!(
            RecordView::new(None).with_headers(&map).header("priority"),
            Some(&b"high"[..])
        );
        assert_eq!(RecordView::new(None).header("priority"), None);
    }

    #[derive(Debug)]
    struct Broken;

    impl Partitioner for Broken {
        fn partition(&self, _record: &RecordView<'_>, partitions: i32) -> Result<i32> {
            Ok(partitions)
        }
    }

    #[test]
    fn choose_refuses_answers_outside_the_topic() {
        let e = choose(&Broken, &RecordView::new(None), 4).unwrap_err();
        assert!(e.to_string().contains("outside 0..4"), "{e}");
        assert_eq!(
            choose(&Broken, &RecordView::new(None), 0).unwrap_err(),
            Error::NoPartitions { partitions: 0 }
        );
    }
}
