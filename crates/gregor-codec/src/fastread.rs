//! A compiled Avro reader: the decoding twin of [`crate::fastwrite`], for records written with
//! the reader's own schema.
//!
//! It reads straight from the input slice, hands strings and bytes to serde borrowed (one
//! allocation per `String`, none for money), and checks every declared length against the bytes
//! left before using it, so nothing is ever allocated for a length the input cannot hold.
//! Arrays and maps give serde no size hint: a collection grows only as elements are actually
//! read. Property tests compare it with apache-avro's reader on valid and arbitrary input.

use std::fmt;

use serde::de::{self, DeserializeSeed, Visitor};

use crate::fastwrite::{Compiled, Node};

/// Why a datum did not decode.
#[derive(Debug)]
pub(crate) struct ReadError(pub(crate) String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ReadError(msg.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError(msg.into()))
}

/// Deserializes a `T` from the start of `input`, advancing it past the datum.
pub(crate) fn read<'de, T: de::Deserialize<'de>>(
    compiled: &Compiled,
    input: &mut &'de [u8],
) -> Result<T, ReadError> {
    T::deserialize(Reader {
        c: compiled,
        node: 0,
        input,
    })
}

fn read_long(input: &mut &[u8]) -> Result<i64, ReadError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some((&byte, rest)) = input.split_first() else {
            return fail("unexpected end of datum in a varint");
        };
        *input = rest;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return fail("varint overflows 64 bits");
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    fail("varint longer than 10 bytes")
}

fn take<'de>(input: &mut &'de [u8], len: usize) -> Result<&'de [u8], ReadError> {
    if input.len() < len {
        return fail(format!(
            "declared length {len} exceeds the {} bytes left",
            input.len()
        ));
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn read_len(input: &mut &[u8]) -> Result<usize, ReadError> {
    let len = read_long(input)?;
    let len = usize::try_from(len).map_err(|_| ReadError(format!("negative length {len}")))?;
    if len > input.len() {
        return fail(format!(
            "declared length {len} exceeds the {} bytes left",
            input.len()
        ));
    }
    Ok(len)
}

struct Reader<'c, 'i, 'de> {
    c: &'c Compiled,
    node: usize,
    input: &'i mut &'de [u8],
}

impl<'c, 'i, 'de> Reader<'c, 'i, 'de> {
    fn at(&mut self, node: usize) -> Reader<'c, '_, 'de> {
        Reader {
            c: self.c,
            node,
            input: self.input,
        }
    }
}

impl<'de> de::Deserializer<'de> for Reader<'_, '_, 'de> {
    type Error = ReadError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ReadError> {
        match &self.c.nodes[self.node] {
            Node::Null => visitor.visit_unit(),
            Node::Boolean => match take(self.input, 1)?[0] {
                0 => visitor.visit_bool(false),
                1 => visitor.visit_bool(true),
                b => fail(format!("invalid boolean byte {b}")),
            },
            Node::Int => {
                let v = read_long(self.input)?;
                let v = i32::try_from(v).map_err(|_| ReadError(format!("int {v} out of range")))?;
                visitor.visit_i32(v)
            }
            Node::Long => visitor.visit_i64(read_long(self.input)?),
            Node::Float => {
                let b = take(self.input, 4)?;
                visitor.visit_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            Node::Double => {
                let b = take(self.input, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                visitor.visit_f64(f64::from_le_bytes(a))
            }
            Node::Bytes => {
                let len = read_len(self.input)?;
                visitor.visit_borrowed_bytes(take(self.input, len)?)
            }
            Node::Str => {
                let len = read_len(self.input)?;
                let bytes = take(self.input, len)?;
                let s = std::str::from_utf8(bytes)
                    .map_err(|e| ReadError(format!("string is not UTF-8: {e}")))?;
                visitor.visit_borrowed_str(s)
            }
            Node::Fixed(size) => {
                let size = *size;
                visitor.visit_borrowed_bytes(take(self.input, size)?)
            }
            Node::Enum(symbols) => {
                let i = read_long(self.input)?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| ReadError(format!("enum index {i} out of range")))?;
                visitor.visit_str(symbol)
            }
            Node::Optional { null_index, some } => {
                let (null_index, some) = (*null_index, *some);
                match read_long(self.input)? {
                    i if i == null_index => visitor.visit_none(),
                    i if i == 1 - null_index => visitor.visit_some(self.at(some)),
                    i => fail(format!("union index {i} out of range")),
                }
            }
            Node::Array(item) => {
                let item = *item;
                visitor.visit_seq(Blocks::new(self.c, item, self.input))
            }
            Node::Map(value) => {
                let value = *value;
                visitor.visit_map(Blocks::new(self.c, value, self.input))
            }
            Node::Record(fields) => visitor.visit_map(Fields {
                c: self.c,
                fields,
                next: 0,
                input: self.input,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match &self.c.nodes[self.node] {
            Node::Optional { .. } => self.deserialize_any(visitor),
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let Node::Enum(symbols) = &self.c.nodes[self.node] else {
            return fail("expected an Avro enum");
        };
        let i = read_long(self.input)?;
        let symbol = usize::try_from(i)
            .ok()
            .and_then(|i| symbols.get(i))
            .ok_or_else(|| ReadError(format!("enum index {i} out of range")))?;
        visitor.visit_enum(UnitVariant(symbol))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Array and map blocks: `count` items (a negative count is followed by the block's byte
/// size), until a zero count.
struct Blocks<'c, 'i, 'de> {
    c: &'c Compiled,
    item: usize,
    input: &'i mut &'de [u8],
    left: u64,
    done: bool,
}

impl<'c, 'i, 'de> Blocks<'c, 'i, 'de> {
    fn new(c: &'c Compiled, item: usize, input: &'i mut &'de [u8]) -> Self {
        Blocks {
            c,
            item,
            input,
            left: 0,
            done: false,
        }
    }

    /// Whether another item follows, reading block headers as needed.
    fn more(&mut self) -> Result<bool, ReadError> {
        while self.left == 0 {
            if self.done {
                return Ok(false);
            }
            let count = read_long(self.input)?;
            if count == 0 {
                self.done = true;
                return Ok(false);
            }
            if count < 0 {
                // The block's size in bytes follows; it only helps skipping, but must be sane.
                let size = read_long(self.input)?;
                if size < 0 {
                    return fail(format!("negative block size {size}"));
                }
            }
            self.left = count.unsigned_abs();
        }
        self.left -= 1;
        Ok(true)
    }
}

impl<'de> de::SeqAccess<'de> for Blocks<'_, '_, 'de> {
    type Error = ReadError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ReadError> {
        if !self.more()? {
            return Ok(None);
        }
        seed.deserialize(Reader {
            c: self.c,
            node: self.item,
            input: self.input,
        })
        .map(Some)
    }
}

impl<'de> de::MapAccess<'de> for Blocks<'_, '_, 'de> {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        if !self.more()? {
            return Ok(None);
        }
        let len = read_len(self.input)?;
        let bytes = take(self.input, len)?;
        let key = std::str::from_utf8(bytes)
            .map_err(|e| ReadError(format!("map key is not UTF-8: {e}")))?;
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        seed.deserialize(Reader {
            c: self.c,
            node: self.item,
            input: self.input,
        })
    }
}

/// A record's fields, in schema order, as a map from field name to value.
struct Fields<'c, 'i, 'de> {
    c: &'c Compiled,
    fields: &'c [(String, usize)],
    next: usize,
    input: &'i mut &'de [u8],
}

impl<'de> de::MapAccess<'de> for Fields<'_, '_, 'de> {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        match self.fields.get(self.next) {
            Some((name, _)) => seed
                .deserialize(de::value::StrDeserializer::<ReadError>::new(name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        let Some((_, node)) = self.fields.get(self.next) else {
            return fail("record value asked for past its last field");
        };
        self.next += 1;
        seed.deserialize(Reader {
            c: self.c,
            node: *node,
            input: self.input,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len() - self.next)
    }
}

struct UnitVariant<'a>(&'a str);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_> {
    type Error = ReadError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), ReadError> {
        let v = seed.deserialize(de::value::StrDeserializer::<ReadError>::new(self.0))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_> {
    type Error = ReadError;

    fn unit_variant(self) -> Result<(), ReadError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> Result<T::Value, ReadError> {
        fail("an Avro enum symbol has no data")
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, ReadError> {
        fail("an Avro enum symbol has no data")
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ReadError> {
        fail("an Avro enum symbol has no data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema;
    use apache_avro::reader::datum::GenericDatumReader;
    use gregor_event::{Event, OrderEvent, TypedEvent};
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    fn both<T: DeserializeOwned>(
        schema: &Schema,
        bytes: &[u8],
    ) -> (Result<T, String>, Result<T, String>) {
        let c = Compiled::new(schema).unwrap();
        let mut ours_in = bytes;
        let ours = read::<T>(&c, &mut ours_in)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                if ours_in.is_empty() {
                    Ok(v)
                } else {
                    Err("trailing".into())
                }
            });
        let mut theirs_in = bytes;
        let theirs = GenericDatumReader::builder(schema)
            .human_readable(false)
            .build()
            .unwrap()
            .read_deser::<T>(&mut theirs_in)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                if theirs_in.is_empty() {
                    Ok(v)
                } else {
                    Err("trailing".into())
                }
            });
        (ours, theirs)
    }

    fn order_bytes(n: u32) -> Vec<u8> {
        let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
        let mut out = Vec::new();
        Compiled::new(&schema)
            .unwrap()
            .write(&crate::testutil::order(n), &mut out)
            .unwrap();
        out
    }

    #[test]
    fn reads_what_is_written() {
        let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
        for n in 0..5 {
            let (ours, theirs) = both::<OrderEvent>(&schema, &order_bytes(n));
            assert_eq!(ours.unwrap(), crate::testutil::order(n));
            assert_eq!(theirs.unwrap(), crate::testutil::order(n));
        }
        let schema = Schema::parse_str(gregor_event::avro::EVENT).unwrap();
        let event = crate::testutil::order(2)
            .to_event("s")
            .unwrap()
            .with_metadata("k", "v");
        let mut out = Vec::new();
        Compiled::new(&schema)
            .unwrap()
            .write(&event, &mut out)
            .unwrap();
        let (ours, theirs) = both::<Event>(&schema, &out);
        assert_eq!(ours.unwrap(), event);
        assert_eq!(theirs.unwrap(), event);
    }

    #[test]
    fn lengths_beyond_the_input_are_refused_before_use() {
        let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
        let c = Compiled::new(&schema).unwrap();
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        let err = read::<OrderEvent>(&c, &mut &huge[..]).unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
        let overlong = [0xff; 11];
        assert!(read::<OrderEvent>(&c, &mut &overlong[..]).is_err());
    }

    /// fuzz/findings/avro/varint-overflow-vs-apache-avro.bin: a long whose 10th byte carries
    /// more than the 64th bit. apache-avro keeps the low 64 bits; the compiled reader refuses.
    #[test]
    fn varint_overflow_is_refused() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let err = read_long(&mut input).expect_err("overflowing varint refused");
        assert!(
            err.to_string().contains("varint overflows 64 bits"),
            "{err}"
        );
        // The largest 10-byte varint that fits (u64::MAX zig-zag = i64::MIN) still reads.
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_long(&mut input).unwrap(), i64::MIN);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn agrees_with_apache_avro_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
            let (ours, theirs) = both::<OrderEvent>(&schema, &bytes);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                // Stricter on purpose: apache-avro drops the bits of a 10-byte varint that do
                // not fit in 64 bits; we refuse the datum (varint_overflow_is_refused).
                (Err(e), Ok(_)) if e.contains("varint overflows 64 bits") => {}
                _ => prop_assert!(false, "ours {:?} theirs {:?}", ours, theirs),
            }
        }

        #[test]
        fn agrees_with_apache_avro_on_mutated_orders(pos in 0usize..400, byte in any::<u8>(), cut in 1usize..400) {
            let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
            let mut bytes = order_bytes(3);
            let i = pos % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut);
            let (ours, theirs) = both::<OrderEvent>(&schema, &bytes);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                // Stricter on purpose: apache-avro drops the bits of a 10-byte varint that do
                // not fit in 64 bits; we refuse the datum (varint_overflow_is_refused).
                (Err(e), Ok(_)) if e.contains("varint overflows 64 bits") => {}
                _ => prop_assert!(false, "ours {:?} theirs {:?}", ours, theirs),
            }
        }
    }
}
