//! A bounded structural check of an Avro datum against its writer schema, run before the datum
//! reaches apache-avro's `Value` readers (the resolving plan and the serde plan of schemas the
//! compiled reader does not handle).
//!
//! apache-avro allocates a string, bytes or array block of the declared size (up to its
//! process-wide limit, 16 MiB by default) before it learns whether the bytes are there. This
//! walk allocates nothing per datum: it checks every declared length, and every array or map
//! block count times the smallest encoded size of one item, against the bytes left; it caps the
//! items whose encoding may take no byte at all (`null`, `fixed(0)`, empty records), and the
//! nesting depth. A datum that passes fits its input, so what apache-avro then allocates is
//! proportional to the input's length.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, NamesRef, ResolvedSchema, UuidSchema};

/// Most items of a type whose encoding can take no byte (`null`, `fixed(0)`, records of such
/// fields) one datum may declare, over all its arrays and maps.
pub(crate) const EMPTY_ITEMS_MAX: u64 = 4096;

/// Deepest nesting of records, arrays, maps and unions one datum may have.
pub(crate) const DEPTH_MAX: usize = 128;

/// One node of a compiled writer schema.
#[derive(Debug, Clone)]
enum Shape {
    /// No bytes.
    Null,
    /// One byte, 0 or 1.
    Boolean,
    /// A zig-zag varint (int, long, enum index, dates and times).
    Varint,
    /// Exactly this many bytes (float, double, fixed, duration).
    Fixed(usize),
    /// A length, then that many bytes (bytes, string, decimal, uuid as text).
    Bytes,
    /// Blocks of items of the node.
    Array(usize),
    /// Blocks of (string key, value of the node).
    Map(usize),
    /// An index, then the variant's node.
    Union(Vec<usize>),
    /// The fields' nodes, in order.
    Record(Vec<usize>),
}

/// A writer schema compiled for [`Shapes::check`].
#[derive(Debug, Clone)]
pub(crate) struct Shapes {
    nodes: Vec<Shape>,
    /// Fewest bytes one value of each node encodes to (a lower bound for recursive types).
    min: Vec<usize>,
}

impl Shapes {
    /// Compiles `schema`; an error names a reference that does not resolve.
    pub(crate) fn new(schema: &Schema) -> Result<Shapes, String> {
        let resolved = ResolvedSchema::new(schema).map_err(|e| e.to_string())?;
        let mut b = Builder {
            names: resolved.get_names(),
            named: HashMap::new(),
            nodes: Vec::new(),
        };
        b.compile(schema, None)?;
        let mut shapes = Shapes {
            min: vec![0; b.nodes.len()],
            nodes: b.nodes,
        };
        // Fixed point from below: every node's `min` only grows and stays a lower bound.
        for _ in 0..shapes.nodes.len() + 1 {
            let mut changed = false;
            for i in 0..shapes.nodes.len() {
                let m = shapes.min_of(i);
                if m != shapes.min[i] {
                    shapes.min[i] = m;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(shapes)
    }

    fn min_of(&self, i: usize) -> usize {
        match &self.nodes[i] {
            Shape::Null => 0,
            Shape::Fixed(n) => *n,
            Shape::Boolean | Shape::Varint | Shape::Bytes | Shape::Array(_) | Shape::Map(_) => 1,
            Shape::Union(variants) => 1 + variants.iter().map(|&v| self.min[v]).min().unwrap_or(0),
            Shape::Record(fields) => fields
                .iter()
                .fold(0usize, |sum, &f| sum.saturating_add(self.min[f]))
                // A cap keeps a type that can only recurse forever from growing without end.
                .min(1 << 20),
        }
    }

    /// Walks one datum from the start of `input` and advances `input` past it; an error says
    /// what does not fit. Allocates nothing.
    pub(crate) fn check(&self, input: &mut &[u8]) -> Result<(), String> {
        let mut walk = Walk {
            shapes: self,
            input,
            empty_items: 0,
        };
        walk.node(0, 0)
    }
}

struct Builder<'s> {
    names: &'s NamesRef<'s>,
    /// Records compiled so far, by full name: a reference to one reuses its node (recursion).
    named: HashMap<Name, usize>,
    nodes: Vec<Shape>,
}

impl Builder<'_> {
    fn push(&mut self, shape: Shape) -> usize {
        self.nodes.push(shape);
        self.nodes.len() - 1
    }

    fn compile(&mut self, schema: &Schema, namespace: Option<&str>) -> Result<usize, String> {
        let shape = match schema {
            Schema::Null => Shape::Null,
            Schema::Boolean => Shape::Boolean,
            Schema::Int
            | Schema::Long
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Shape::Varint,
            Schema::Float => Shape::Fixed(4),
            Schema::Double => Shape::Fixed(8),
            Schema::Bytes | Schema::String | Schema::BigDecimal => Shape::Bytes,
            Schema::Uuid(UuidSchema::String | UuidSchema::Bytes) => Shape::Bytes,
            Schema::Uuid(UuidSchema::Fixed(f)) | Schema::Duration(f) | Schema::Fixed(f) => {
                Shape::Fixed(f.size)
            }
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Shape::Bytes,
                InnerDecimalSchema::Fixed(f) => Shape::Fixed(f.size),
            },
            Schema::Array(a) => {
                let at = self.push(Shape::Null);
                let item = self.compile(&a.items, namespace)?;
                self.nodes[at] = Shape::Array(item);
                return Ok(at);
            }
            Schema::Map(m) => {
                let at = self.push(Shape::Null);
                let value = self.compile(&m.types, namespace)?;
                self.nodes[at] = Shape::Map(value);
                return Ok(at);
            }
            Schema::Union(u) => {
                let at = self.push(Shape::Null);
                let variants = u
                    .variants()
                    .iter()
                    .map(|v| self.compile(v, namespace))
                    .collect::<Result<Vec<_>, _>>()?;
                self.nodes[at] = Shape::Union(variants);
                return Ok(at);
            }
            Schema::Record(r) => {
                let name = r.name.fully_qualified_name(namespace).into_owned();
                if let Some(&at) = self.named.get(&name) {
                    return Ok(at);
                }
                let at = self.push(Shape::Null);
                self.named.insert(name.clone(), at);
                let inner = name.namespace();
                let fields = r
                    .fields
                    .iter()
                    .map(|f| self.compile(&f.schema, inner))
                    .collect::<Result<Vec<_>, _>>()?;
                self.nodes[at] = Shape::Record(fields);
                return Ok(at);
            }
            Schema::Ref { name } => {
                let name = name.fully_qualified_name(namespace).into_owned();
                if let Some(&at) = self.named.get(&name) {
                    return Ok(at);
                }
                let Some(&target) = self.names.get(&name) else {
                    return Err(format!("reference to an unknown type {name}"));
                };
                return self.compile(target, name.namespace());
            }
        };
        Ok(self.push(shape))
    }
}

struct Walk<'a, 'i, 'd> {
    shapes: &'a Shapes,
    input: &'i mut &'d [u8],
    empty_items: u64,
}

impl Walk<'_, '_, '_> {
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some((&byte, rest)) = self.input.split_first() else {
                return Err("unexpected end of datum in a varint".into());
            };
            *self.input = rest;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err("varint overflows 64 bits".into());
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn skip(&mut self, len: usize) -> Result<(), String> {
        if len > self.input.len() {
            return Err(format!(
                "declared length {len} exceeds the {} bytes left",
                self.input.len()
            ));
        }
        *self.input = &self.input[len..];
        Ok(())
    }

    fn node(&mut self, node: usize, depth: usize) -> Result<(), String> {
        let shapes = self.shapes;
        match &shapes.nodes[node] {
            Shape::Null => Ok(()),
            Shape::Boolean => match self.input.split_first() {
                Some((0 | 1, rest)) => {
                    *self.input = rest;
                    Ok(())
                }
                Some((b, _)) => Err(format!("invalid boolean byte {b}")),
                None => Err("unexpected end of datum in a boolean".into()),
            },
            Shape::Varint => self.long().map(drop),
            Shape::Fixed(n) => self.skip(*n),
            Shape::Bytes => {
                let len = self.long()?;
                let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
                self.skip(len)
            }
            Shape::Array(item) => self.blocks(*item, false, depth),
            Shape::Map(value) => self.blocks(*value, true, depth),
            Shape::Union(variants) => {
                let depth = self.deeper(depth)?;
                let i = self.long()?;
                let variant = usize::try_from(i)
                    .ok()
                    .and_then(|i| variants.get(i))
                    .ok_or_else(|| format!("union index {i} out of range"))?;
                self.node(*variant, depth)
            }
            Shape::Record(fields) => {
                let depth = self.deeper(depth)?;
                fields.iter().try_for_each(|&f| self.node(f, depth))
            }
        }
    }

    fn deeper(&self, depth: usize) -> Result<usize, String> {
        if depth >= DEPTH_MAX {
            return Err(format!("nested deeper than {DEPTH_MAX} levels"));
        }
        Ok(depth + 1)
    }

    /// Array or map blocks: `count`, (if negative: `|count|` then a byte size), items; 0 ends.
    fn blocks(&mut self, item: usize, map: bool, depth: usize) -> Result<(), String> {
        let depth = self.deeper(depth)?;
        // A map entry starts with its key's length: at least one byte.
        let min = self.shapes.min[item] + usize::from(map);
        loop {
            let count = self.long()?;
            let count = match count {
                0 => return Ok(()),
                c if c < 0 => {
                    let size = self.long()?;
                    if usize::try_from(size).map_or(true, |s| s > self.input.len()) {
                        return Err(format!(
                            "block size {size} exceeds the {} bytes left",
                            self.input.len()
                        ));
                    }
                    c.unsigned_abs()
                }
                c => c.unsigned_abs(),
            };
            if min == 0 {
                self.empty_items = self.empty_items.saturating_add(count);
                if self.empty_items > EMPTY_ITEMS_MAX {
                    return Err(format!(
                        "more than {EMPTY_ITEMS_MAX} items that take no bytes"
                    ));
                }
            } else if count > (self.input.len() / min) as u64 {
                return Err(format!(
                    "block of {count} items of at least {min} bytes exceeds the {} bytes left",
                    self.input.len()
                ));
            }
            for _ in 0..count {
                if map {
                    let len = self.long()?;
                    let len =
                        usize::try_from(len).map_err(|_| format!("negative key length {len}"))?;
                    self.skip(len)?;
                }
                self.node(item, depth)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;
    use proptest::prelude::*;

    fn shapes(schema: &str) -> (Schema, Shapes) {
        let schema = Schema::parse_str(schema).unwrap();
        let shapes = Shapes::new(&schema).unwrap();
        (schema, shapes)
    }

    fn check(s: &Shapes, bytes: &[u8]) -> Result<usize, String> {
        let mut rest = bytes;
        s.check(&mut rest).map(|()| rest.len())
    }

    const NESTED: &str = r#"{"type":"record","name":"R","namespace":"a","fields":[
        {"name":"s","type":"string"},
        {"name":"m","type":{"type":"map","values":{"type":"array","items":"long"}}},
        {"name":"o","type":["null",{"type":"fixed","name":"F","size":3}]},
        {"name":"f2","type":"F"},
        {"name":"e","type":{"type":"enum","name":"E","symbols":["x","y"]}},
        {"name":"n","type":{"type":"array","items":"null"}},
        {"name":"next","type":["null","R"]}]}"#;

    #[test]
    fn refuses_lengths_past_the_input() {
        let (_, s) =
            shapes(r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#);
        // "s" declares 1,000,000 bytes (zig-zag 2,000,000) with 2 bytes behind it.
        let err = check(&s, &[0x80, 0x89, 0x7a, b'a', b'b']).unwrap_err();
        assert!(err.contains("exceeds the 2 bytes left"), "{err}");
        assert_eq!(check(&s, &[4, b'a', b'b']), Ok(0));
    }

    #[test]
    fn refuses_block_counts_past_the_input() {
        let (_, s) = shapes(r#"{"type":"array","items":"double"}"#);
        // 3 doubles declared (6 zig-zag), 16 bytes left: at least 24 needed.
        let mut bytes = vec![6];
        bytes.extend([0; 16]);
        let err = check(&s, &bytes).unwrap_err();
        assert!(err.contains("at least 8 bytes"), "{err}");
    }

    #[test]
    fn caps_items_that_take_no_bytes() {
        let (_, s) = shapes(r#"{"type":"array","items":"null"}"#);
        assert_eq!(check(&s, &[0x80, 0x40, 0]), Ok(0)); // 4096 nulls
        let err = check(&s, &[0x82, 0x40, 0]).unwrap_err(); // 4097
        assert!(err.contains("take no bytes"), "{err}");
        // A negative count carries a byte size, checked too.
        let err = check(&s, &[1, 0x7e, 0]).unwrap_err();
        assert!(err.contains("block size"), "{err}");
    }

    #[test]
    fn caps_the_depth_of_recursive_types() {
        let (_, s) = shapes(
            r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#,
        );
        let mut bytes = vec![2; DEPTH_MAX];
        bytes.push(0);
        let err = check(&s, &bytes).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
        let mut bytes = vec![2; 10];
        bytes.push(0);
        assert_eq!(check(&s, &bytes), Ok(0));
    }

    fn nested_value() -> impl Strategy<Value = Value> {
        let leaf = (
            ".{0,8}",
            proptest::collection::vec(
                (".{0,4}", proptest::collection::vec(any::<i64>(), 0..4)),
                0..4,
            ),
            proptest::option::of(proptest::array::uniform3(any::<u8>())),
            proptest::array::uniform3(any::<u8>()),
            0u32..2,
            0usize..5,
        );
        (proptest::collection::vec(leaf, 1..4)).prop_map(|levels| {
            let mut next = Value::Union(0, Box::new(Value::Null));
            for (s, m, o, f, e, n) in levels.into_iter().rev() {
                let m = m
                    .into_iter()
                    .map(|(k, v)| (k, Value::Array(v.into_iter().map(Value::Long).collect())))
                    .collect();
                let o = match o {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(b) => Value::Union(1, Box::new(Value::Fixed(3, b.to_vec()))),
                };
                let record = Value::Record(vec![
                    ("s".into(), Value::String(s)),
                    ("m".into(), Value::Map(m)),
                    ("o".into(), o),
                    ("f2".into(), Value::Fixed(3, f.to_vec())),
                    ("e".into(), Value::Enum(e, ["x", "y"][e as usize].into())),
                    ("n".into(), Value::Array(vec![Value::Null; n])),
                    ("next".into(), next),
                ]);
                next = Value::Union(1, Box::new(record));
            }
            match next {
                Value::Union(_, r) => *r,
                v => v,
            }
        })
    }

    proptest! {
        /// Every valid datum passes, consuming exactly its bytes; every strict prefix fails.
        #[test]
        fn accepts_what_apache_avro_writes(value in nested_value()) {
            let (schema, s) = shapes(NESTED);
            let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
                .build()
                .unwrap();
            let bytes = writer.write_value_to_vec(value).unwrap();
            prop_assert_eq!(check(&s, &bytes), Ok(0));
            for cut in 0..bytes.len() {
                prop_assert!(check(&s, &bytes[..cut]).is_err(), "cut {}", cut);
            }
        }

        /// On arbitrary bytes: never a panic, and what passes is read by apache-avro with the
        /// same bytes left (the walk and apache-avro agree on where the datum ends).
        #[test]
        fn arbitrary_bytes_agree_with_apache_avro(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (schema, s) = shapes(NESTED);
            if let Ok(left) = check(&s, &bytes) {
                let mut rest = &bytes[..];
                let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
                    .build()
                    .unwrap();
                if reader.read_value(&mut rest).is_ok() {
                    prop_assert_eq!(rest.len(), left);
                }
            }
        }
    }
}
