//! A small deterministic generator and the byte mutations the driver applies to corpus entries.

/// xorshift64*: fast, seedable, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// Values that sit on the edges decoders get wrong: zero, sign bits, widths' maxima, and the
/// small negatives Kafka uses for null (-1).
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    -2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    -0x8000_0000,
    0xffff_ffff,
    i64::MAX,
    i64::MIN,
    16,
    64,
    255,
    256,
    1024,
    4096,
    65536,
];

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n` = 0 gives 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A length biased to small values, sometimes up to `max`.
    pub fn len(&mut self, max: usize) -> usize {
        match self.below(8) {
            0..=4 => self.below(16.min(max + 1)),
            5 | 6 => self.below(256.min(max + 1)),
            _ => self.below(max + 1),
        }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// An interesting or random integer.
    pub fn int(&mut self) -> i64 {
        if self.one_in(2) {
            INTERESTING[self.below(INTERESTING.len())]
        } else {
            self.next_u64() as i64 >> self.below(64)
        }
    }

    /// Picks one of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Applies 1 to 8 stacked mutations to `data` (AFL's havoc stage, without coverage), using
/// `other` as the source of spliced bytes. The result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        match rng.below(13) {
            // Flip a bit.
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            // Set a random byte.
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            // Overwrite with an interesting integer, big-endian (Kafka) or little, 1..8 bytes.
            2 | 3 if !data.is_empty() => {
                let width = *rng.pick(&[1usize, 2, 4, 8]);
                let v = rng.int();
                let bytes = if rng.one_in(4) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let i = rng.below(data.len());
                for (k, b) in bytes[8 - width..].iter().enumerate() {
                    if let Some(slot) = data.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            // Overwrite with a zig-zag varint (Avro, Kafka records, compact lengths).
            4 | 5 if !data.is_empty() => {
                let v = rng.int();
                let mut z = ((v << 1) ^ (v >> 63)) as u64;
                if rng.one_in(2) {
                    // Unsigned (compact lengths are length + 1, unsigned).
                    z = v as u64;
                }
                let mut enc = Vec::new();
                while z >= 0x80 {
                    enc.push(z as u8 | 0x80);
                    z >>= 7;
                }
                enc.push(z as u8);
                let i = rng.below(data.len());
                for (k, b) in enc.iter().enumerate() {
                    if let Some(slot) = data.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            // Delete a range.
            6 if !data.is_empty() => {
                let i = rng.below(data.len());
                let n = rng.len(data.len() - i);
                data.drain(i..i + n);
            }
            // Insert random bytes.
            7 => {
                let i = rng.below(data.len() + 1);
                let n = rng.len(64);
                let ins = rng.bytes(n);
                data.splice(i..i, ins);
            }
            // Duplicate a range (repeated records, fields, array elements).
            8 if !data.is_empty() => {
                let i = rng.below(data.len());
                let n = 1 + rng.len(data.len() - i - 1);
                let chunk = data[i..i + n].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            // Splice a range of the other input in.
            9 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.len(other.len() - i - 1);
                let at = rng.below(data.len() + 1);
                let chunk = other[i..i + n].to_vec();
                if rng.one_in(2) {
                    data.splice(at..at, chunk);
                } else {
                    let end = (at + chunk.len()).min(data.len());
                    data.splice(at..end, chunk);
                }
            }
            // Truncate.
            10 if !data.is_empty() => {
                let n = rng.below(data.len());
                data.truncate(n);
            }
            // Copy a range within.
            11 if data.len() > 1 => {
                let i = rng.below(data.len());
                let n = 1 + rng.len(data.len() - i - 1);
                let chunk = data[i..i + n].to_vec();
                let at = rng.below(data.len());
                for (k, b) in chunk.iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            // Swap two bytes.
            _ if data.len() > 1 => {
                let i = rng.below(data.len());
                let j = rng.below(data.len());
                data.swap(i, j);
            }
            _ => {}
        }
    }
    data.truncate(max_len);
}
