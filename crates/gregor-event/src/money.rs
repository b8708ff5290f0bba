//! Money as integer minor units (cents), exact through JSON, Avro and the envelope.
//!
//! | where | representation | example (12.34) |
//! | --- | --- | --- |
//! | Rust | [`Money`]: `i64` cents | `Money::from_cents(1234)` |
//! | JSON | a number with at most two decimals (strings and integers are accepted on input) | `12.34` |
//! | Avro | `fixed` `Money` of 8 bytes with `logicalType` `decimal`, precision 15, scale 2 (two's complement, big-endian) | `0x00000000000004d2` |
//!
//! The range is ±9,999,999,999,999.99 (15 significant digits): every value in it is printed as
//! JSON by its shortest round-trip form, which is exactly its two-decimal text, and parsed back
//! to the same cents. Nothing is ever rounded: a JSON number with a third decimal, or outside
//! the range, is an error, not a silently different amount.
//!
//! Why `fixed` and not `bytes`: apache-avro's schema resolution refuses a `bytes` decimal whose
//! length is too short for the declared precision (e.g. 2 bytes for precision 15), which is what
//! minimal-length writers such as Java's produce; a `fixed` of 8 bytes always passes, and every
//! Avro library reads it. Reading accepts any length of two's complement (`bytes` decimals too).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest absolute amount in cents: 15 significant digits, Avro `decimal(15, 2)`.
pub const MAX_CENTS: i64 = 999_999_999_999_999;

/// An amount of money in minor units (cents), exact in every representation gregor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a value is not a valid [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Outside ±[`MAX_CENTS`].
    #[error("amount {0} is outside ±9,999,999,999,999.99")]
    OutOfRange(String),
    /// More than two decimals, an exponent that leaves a fraction of a cent, or not a number.
    #[error("amount {0:?} is not a decimal with at most two fraction digits")]
    NotCents(String),
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// `cents` minor units; fails outside ±[`MAX_CENTS`].
    pub fn from_cents(cents: i64) -> Result<Money, MoneyError> {
        if (-MAX_CENTS..=MAX_CENTS).contains(&cents) {
            Ok(Money(cents))
        } else {
            Err(MoneyError::OutOfRange(cents.to_string()))
        }
    }

    /// The amount in minor units.
    pub fn cents(self) -> i64 {
        self.0
    }

    /// Sum of two amounts; `None` when the result leaves the range.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .and_then(|c| Money::from_cents(c).ok())
    }

    /// `self * n`; `None` when the result leaves the range.
    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.0
            .checked_mul(n)
            .and_then(|c| Money::from_cents(c).ok())
    }

    /// Parses `12`, `12.3`, `-12.34`, `+0.5`; rejects a third decimal, exponents and blanks.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let bad = || MoneyError::NotCents(text.to_owned());
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        if frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        // 16 digits already exceed the range; checking the length first keeps parse() from overflowing.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 13 {
            return Err(MoneyError::OutOfRange(text.to_owned()));
        }
        let units: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut cents_part: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        if frac.len() == 1 {
            cents_part *= 10;
        }
        let cents = units * 100 + cents_part;
        Money::from_cents(if negative { -cents } else { cents })
    }

    /// From a JSON number. Exact: the number's shortest round-trip text is parsed as a decimal.
    pub fn from_f64(value: f64) -> Result<Money, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::NotCents(value.to_string()));
        }
        if value.abs() > 1e16 {
            return Err(MoneyError::OutOfRange(value.to_string()));
        }
        // Rust's Display for f64 prints the shortest text that parses back to the same value and
        // never uses an exponent, so 12.34 prints as "12.34" and 0.1 + 0.2 as "0.30000000000000004".
        Money::parse(&value.to_string())
    }

    /// The JSON number written for this amount (exact: see the module docs).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The unscaled value (cents) as minimal two's complement, big-endian: the form of a
    /// `bytes`-backed Avro decimal. (gregor writes the 8-byte `fixed` form, `cents().to_be_bytes()`.)
    pub fn to_decimal_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let negative = self.0 < 0;
        let fill = if negative { 0xff } else { 0x00 };
        let mut start = 0;
        // Drop sign-extension bytes while the next byte still carries the sign bit.
        while start < 7 && bytes[start] == fill && ((bytes[start + 1] & 0x80 != 0) == negative) {
            start += 1;
        }
        bytes[start..].to_vec()
    }

    /// From Avro `decimal` bytes (scale 2). Accepts redundant sign-extension bytes; rejects
    /// empty input and values outside the range.
    pub fn from_decimal_bytes(bytes: &[u8]) -> Result<Money, MoneyError> {
        let Some(&first) = bytes.first() else {
            return Err(MoneyError::NotCents("empty decimal bytes".into()));
        };
        let fill = if first & 0x80 != 0 { 0xff } else { 0x00 };
        let significant = bytes.len().saturating_sub(8);
        if bytes[..significant].iter().any(|&b| b != fill) {
            return Err(MoneyError::OutOfRange(format!(
                "{}-byte decimal",
                bytes.len()
            )));
        }
        let tail = &bytes[significant..];
        let mut buf = [fill; 8];
        buf[8 - tail.len()..].copy_from_slice(tail);
        let cents = i64::from_be_bytes(buf);
        // A longer input whose sign differs from the kept bytes' is out of range too.
        if significant > 0 && ((cents < 0) != (fill == 0xff)) {
            return Err(MoneyError::OutOfRange(format!(
                "{}-byte decimal",
                bytes.len()
            )));
        }
        Money::from_cents(cents)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Money, MoneyError> {
        Money::parse(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.to_f64())
        } else {
            serializer.serialize_bytes(&self.0.to_be_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(MoneyVisitor)
        } else {
            deserializer.deserialize_bytes(MoneyVisitor)
        }
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount with at most two decimals (number, string or Avro decimal bytes)")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        Money::from_f64(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        v.checked_mul(100)
            .ok_or_else(|| MoneyError::OutOfRange(v.to_string()))
            .and_then(Money::from_cents)
            .map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        i64::try_from(v)
            .map_err(|_| E::custom(MoneyError::OutOfRange(v.to_string())))
            .and_then(|v| self.visit_i64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Money, E> {
        Money::from_decimal_bytes(v).map_err(E::custom)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Money, E> {
        self.visit_bytes(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_and_parse() {
        let m = Money::from_cents(-1234).unwrap();
        assert_eq!(m.to_string(), "-12.34");
        assert_eq!(Money::parse("-12.34").unwrap(), m);
        assert_eq!(Money::parse("12.3").unwrap().cents(), 1230);
        assert_eq!(Money::parse("0.05").unwrap().cents(), 5);
        assert_eq!(Money::parse(".5").unwrap().cents(), 50);
        assert_eq!(Money::parse("7").unwrap().cents(), 700);
        for bad in [
            "", "-", ".", "1.", "1.234", "1e3", "abc", "1.2.3", " 1", "--1",
        ] {
            assert!(Money::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            Money::parse("10000000000000.00"),
            Err(MoneyError::OutOfRange(_))
        ));
        assert!(Money::parse("99999999999999999999999999").is_err());
    }

    #[test]
    fn json_numbers_keep_every_cent() {
        assert_eq!(
            serde_json::to_string(&Money::from_cents(1234).unwrap()).unwrap(),
            "12.34"
        );
        assert_eq!(
            serde_json::to_string(&Money::from_cents(10).unwrap()).unwrap(),
            "0.1"
        );
        let m: Money = serde_json::from_str("0.1").unwrap();
        assert_eq!(m.cents(), 10);
        let m: Money = serde_json::from_str("19").unwrap();
        assert_eq!(m.cents(), 1900);
        let m: Money = serde_json::from_str("\"19.99\"").unwrap();
        assert_eq!(m.cents(), 1999);
        assert!(serde_json::from_str::<Money>("0.005").is_err());
        assert!(serde_json::from_str::<Money>("0.30000000000000004").is_err());
        assert!(serde_json::from_str::<Money>("1e300").is_err());
        assert!(serde_json::from_str::<Money>("true").is_err());
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        let cases: [(i64, &[u8]); 7] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
        ];
        for (cents, bytes) in cases {
            let m = Money::from_cents(cents).unwrap();
            assert_eq!(m.to_decimal_bytes(), bytes, "{cents}");
            assert_eq!(Money::from_decimal_bytes(bytes).unwrap(), m);
        }
        assert_eq!(
            Money::from_decimal_bytes(&[0xff, 0xff, 0xff])
                .unwrap()
                .cents(),
            -1
        );
        assert!(Money::from_decimal_bytes(&[]).is_err());
        assert!(Money::from_decimal_bytes(&[0x7f; 9]).is_err());
        assert!(
            Money::from_decimal_bytes(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err()
        );
        assert!(
            Money::from_decimal_bytes(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
    }

    proptest! {
        #[test]
        fn every_cent_survives_json(cents in -MAX_CENTS..=MAX_CENTS) {
            let m = Money::from_cents(cents).unwrap();
            let text = serde_json::to_string(&m).unwrap();
            let back: Money = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, m, "{}", text);
            prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
        }

        #[test]
        fn every_cent_survives_decimal_bytes(cents in -MAX_CENTS..=MAX_CENTS) {
            let m = Money::from_cents(cents).unwrap();
            prop_assert_eq!(Money::from_decimal_bytes(&m.to_decimal_bytes()).unwrap(), m);
        }

        #[test]
        fn arbitrary_decimal_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = Money::from_decimal_bytes(&bytes);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = Money::parse(&text);
        }
    }
}
