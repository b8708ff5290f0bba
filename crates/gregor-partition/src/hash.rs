//! The hash functions behind the built-in partitioners, each bit-compatible with the client it
//! imitates.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): the 32-bit MurmurHash2 with
/// seed `0x9747b28c`, as a Java `int`.
///
/// ```
/// // Vectors of the Java client's own UtilsTest.
/// assert_eq!(gregor_partition::hash::murmur2(b"21"), -973_932_308);
/// assert_eq!(gregor_partition::hash::murmur2(b"abc"), 479_470_107);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java hashes `int length`; a byte[] never exceeds i32::MAX, so truncation is Java's too.
    let mut h = SEED ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (a mask, not `abs`, so `i32::MIN` maps to 0).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// 32-bit FNV-1a (offset basis `0x811c9dc5`, prime `0x01000193`): Go's `hash/fnv.New32a`.
pub fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// CRC-32 (IEEE 802.3, reflected polynomial `0xedb88320`): zlib's `crc32`, which librdkafka's
/// `rd_crc32` and Go's `crc32.ChecksumIEEE` compute.
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0_u32, |crc, &b| {
        CRC32_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc32_table() -> [u32; 256] {
    let mut table = [0_u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `org.apache.kafka.common.utils.UtilsTest#testMurmur2` (apache/kafka, clients).
    #[test]
    fn murmur2_matches_the_java_clients_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), *want, "{:?}", String::from_utf8_lossy(key));
        }
    }

    /// librdkafka's `unittest_murmur2` (src/rdmurmur2.c), checked there against the Java client:
    /// every tail length and the empty key.
    #[test]
    fn murmur2_matches_librdkafkas_vectors() {
        let long = b"PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: &[(&[u8], u32)] = &[
            (b"kafka", 0xd067_cf64),
            (b"giberish123456789", 0x8f55_2b0c),
            (b"1234", 0x9fc9_7b14),
            (b"234", 0xe7c0_09ca),
            (b"34", 0x8739_30da),
            (b"4", 0x5a4b_5ca1),
            (long, 0x7842_4f1c),
            (&long[1..], 0x4a62_b377),
            (&long[2..], 0xe0e4_e09e),
            (&long[3..], 0x62b8_b43f),
            (b"", 0x106e_08d9),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as u32,
                *want,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn to_positive_masks_rather_than_negates() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973_932_308), 1_173_551_340);
        assert_eq!(to_positive(17), 17);
    }

    /// librdkafka's `unittest_fnv1a` (src/rdfnv1a.c), whose expected values came from Go's
    /// `hash/fnv` and are `abs(int32(Sum32()))`, the form sarama's hash partitioner uses.
    #[test]
    fn fnv1a_matches_gos_hash_fnv() {
        let long = b"PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: &[(&[u8], u32)] = &[
            (b"kafka", 0x0d33_c4e1),
            (b"giberish123456789", 0x77a5_8295),
            (b"1234", 0x023b_dd03),
            (b"234", 0x2dea_3cd2),
            (b"34", 0x740f_a83e),
            (b"4", 0x310c_a263),
            (long, 0x65cb_d69c),
            (&long[1..], 0x6e49_c79a),
            (&long[2..], 0x69ee_d356),
            (&long[3..], 0x6abc_c023),
            (b"", 0x7ee3_623b),
        ];
        for (key, want) in cases {
            let abs = (fnv1a(key) as i32).unsigned_abs();
            assert_eq!(abs, *want, "{:?}", String::from_utf8_lossy(key));
        }
        // The raw offset basis for the empty input, before any abs.
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        // The published FNV-1a test vector for "a".
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }

    #[test]
    fn crc32_is_zlibs() {
        // The CRC catalogue's check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }
}
