//! A compiled Avro writer for the serde shapes gregor's events use.
//!
//! apache-avro's schema-aware serializer looks up every record field by name in a hash map and
//! checks an out-of-order cache for every field, which makes Avro encoding slower than JSON.
//! This writer compiles the schema once into a tree whose record fields are matched by
//! position (serde derive serializes fields in declaration order; the name is still compared),
//! and writes straight into the buffer.
//!
//! It handles the common shapes only. Anything else (fields out of order or skipped, unions
//! other than `null` + one type, tuples, enum variants with data, sequences of unknown length)
//! makes it answer [`Unsupported`], and the codec encodes that value with apache-avro instead,
//! so behaviour and errors are always apache-avro's. The bytes of both writers are compared by
//! property tests.

use std::collections::HashMap;
use std::fmt;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UnionSchema, UuidSchema};
use serde::ser::{self, Serialize};

/// This value or schema shape is not handled here; use apache-avro's serializer.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not handled by the compiled writer")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    /// `bytes` (also decimal and uuid on bytes).
    Bytes,
    /// `string` (also uuid on string).
    Str,
    /// `fixed` of this size (also decimal and duration on fixed).
    Fixed(usize),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    /// `[null, T]` or `[T, null]`: the index of the null branch and the other node.
    Optional {
        null_index: i64,
        some: usize,
    },
    Record(Vec<(String, usize)>),
}

/// A schema compiled into an arena of nodes; index 0 is the root.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) nodes: Vec<Node>,
}

impl Compiled {
    /// Compiles `schema`; `None` if it uses a shape this writer does not handle.
    pub(crate) fn new(schema: &Schema) -> Option<Compiled> {
        let mut c = Compiler {
            nodes: Vec::new(),
            named: HashMap::new(),
            pending: Vec::new(),
        };
        c.compile(schema, None)?;
        // Every reference must have been defined somewhere in the schema.
        for (slot, name) in std::mem::take(&mut c.pending) {
            let target = *c.named.get(&name)?;
            c.nodes[slot] = c.alias(target)?;
        }
        Some(Compiled { nodes: c.nodes })
    }

    /// Appends the Avro binary datum of `value` to `out`.
    pub(crate) fn write<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), Unsupported> {
        value.serialize(Writer {
            c: self,
            node: 0,
            out,
        })
    }
}

struct Compiler {
    nodes: Vec<Node>,
    named: HashMap<Name, usize>,
    /// Slots holding a reference to a named type, resolved at the end.
    pending: Vec<(usize, Name)>,
}

impl Compiler {
    /// A copy of a named node for a reference slot (records are referred to by index, so a
    /// copy of a record node shares its children).
    fn alias(&self, target: usize) -> Option<Node> {
        Some(match &self.nodes[target] {
            Node::Fixed(n) => Node::Fixed(*n),
            Node::Enum(s) => Node::Enum(s.clone()),
            Node::Record(f) => Node::Record(f.clone()),
            _ => return None,
        })
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn compile(&mut self, schema: &Schema, namespace: Option<&str>) -> Option<usize> {
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => Node::Bytes,
            Schema::String | Schema::Uuid(UuidSchema::String) => Node::Str,
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Node::Bytes,
                InnerDecimalSchema::Fixed(f) => {
                    let i = self.push(Node::Fixed(f.size));
                    self.named.insert(f.name.clone(), i);
                    return Some(i);
                }
            },
            Schema::Fixed(f) => {
                let i = self.push(Node::Fixed(f.size));
                self.named.insert(f.name.clone(), i);
                return Some(i);
            }
            Schema::Enum(e) => {
                let i = self.push(Node::Enum(e.symbols.clone()));
                self.named.insert(e.name.clone(), i);
                return Some(i);
            }
            Schema::Array(a) => {
                let slot = self.push(Node::Null);
                let item = self.compile(&a.items, namespace)?;
                self.nodes[slot] = Node::Array(item);
                return Some(slot);
            }
            Schema::Map(m) => {
                let slot = self.push(Node::Null);
                let value = self.compile(&m.types, namespace)?;
                self.nodes[slot] = Node::Map(value);
                return Some(slot);
            }
            Schema::Union(u) => return self.optional(u, namespace),
            Schema::Record(r) => {
                let slot = self.push(Node::Null);
                self.named.insert(r.name.clone(), slot);
                let ns = r.name.namespace().or(namespace);
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    fields.push((f.name.clone(), self.compile(&f.schema, ns)?));
                }
                self.nodes[slot] = Node::Record(fields);
                return Some(slot);
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace).into_owned();
                if let Some(&target) = self.named.get(&full) {
                    // Records may be recursive: only refer to finished nodes.
                    if matches!(self.nodes[target], Node::Null) {
                        return None;
                    }
                    let node = self.alias(target)?;
                    return Some(self.push(node));
                }
                let slot = self.push(Node::Null);
                self.pending.push((slot, full));
                return Some(slot);
            }
            _ => return None,
        };
        Some(self.push(node))
    }

    fn optional(&mut self, u: &UnionSchema, namespace: Option<&str>) -> Option<usize> {
        let [a, b] = u.variants() else { return None };
        let (null_index, other) = match (a, b) {
            (Schema::Null, other) => (0, other),
            (other, Schema::Null) => (1, other),
            _ => return None,
        };
        let slot = self.push(Node::Null);
        let some = self.compile(other, namespace)?;
        self.nodes[slot] = Node::Optional { null_index, some };
        Some(slot)
    }
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn len_i64(len: usize) -> Result<i64, Unsupported> {
    i64::try_from(len).map_err(|_| Unsupported)
}

struct Writer<'c, 'o> {
    c: &'c Compiled,
    node: usize,
    out: &'o mut Vec<u8>,
}

impl Writer<'_, '_> {
    fn node(&self) -> &Node {
        &self.c.nodes[self.node]
    }

    fn long(self, v: i64) -> Result<(), Unsupported> {
        match self.node() {
            Node::Long => zigzag(v, self.out),
            Node::Int => zigzag(
                i64::from(i32::try_from(v).map_err(|_| Unsupported)?),
                self.out,
            ),
            _ => return Err(Unsupported),
        }
        Ok(())
    }
}

/// The parts of a compound value being written.
struct Parts<'c, 'o> {
    c: &'c Compiled,
    out: &'o mut Vec<u8>,
    /// Element node (arrays, maps) or the record's fields.
    item: usize,
    fields: &'c [(String, usize)],
    next: usize,
    len: usize,
}

impl<'c, 'o> ser::Serializer for Writer<'c, 'o> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Parts<'c, 'o>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = Parts<'c, 'o>;
    type SerializeStruct = Parts<'c, 'o>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        match self.node() {
            Node::Boolean => {
                self.out.push(u8::from(v));
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.long(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.long(i64::from(v))
    }

    fn serialize_u64(self, _v: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        match self.node() {
            Node::Float => self.out.extend_from_slice(&v.to_le_bytes()),
            Node::Double => self.out.extend_from_slice(&f64::from(v).to_le_bytes()),
            _ => return Err(Unsupported),
        }
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        match self.node() {
            Node::Double => {
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        match self.node() {
            Node::Str => {
                zigzag(len_i64(v.len())?, self.out);
                self.out.extend_from_slice(v.as_bytes());
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        match self.node() {
            Node::Bytes => {
                zigzag(len_i64(v.len())?, self.out);
                self.out.extend_from_slice(v);
                Ok(())
            }
            Node::Fixed(size) if *size == v.len() => {
                self.out.extend_from_slice(v);
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        match self.node() {
            Node::Optional { null_index, .. } => {
                zigzag(*null_index, self.out);
                Ok(())
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        match self.node() {
            Node::Optional { null_index, some } => {
                let some = *some;
                zigzag(1 - *null_index, self.out);
                value.serialize(Writer {
                    c: self.c,
                    node: some,
                    out: self.out,
                })
            }
            _ => Err(Unsupported),
        }
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        match self.node() {
            Node::Null => Ok(()),
            _ => Err(Unsupported),
        }
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        let Node::Enum(symbols) = self.node() else {
            return Err(Unsupported);
        };
        let position = match symbols.get(index as usize) {
            Some(s) if s == variant => index as usize,
            _ => symbols
                .iter()
                .position(|s| s == variant)
                .ok_or(Unsupported)?,
        };
        zigzag(len_i64(position)?, self.out);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Parts<'c, 'o>, Unsupported> {
        let (Node::Array(item), Some(len)) = (self.node(), len) else {
            return Err(Unsupported);
        };
        let item = *item;
        if len > 0 {
            zigzag(len_i64(len)?, self.out);
        }
        Ok(Parts {
            c: self.c,
            out: self.out,
            item,
            fields: &[],
            next: 0,
            len,
        })
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Parts<'c, 'o>, Unsupported> {
        let (Node::Map(value), Some(len)) = (self.node(), len) else {
            return Err(Unsupported);
        };
        let item = *value;
        if len > 0 {
            zigzag(len_i64(len)?, self.out);
        }
        Ok(Parts {
            c: self.c,
            out: self.out,
            item,
            fields: &[],
            next: 0,
            len: len * 2,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Parts<'c, 'o>, Unsupported> {
        let Node::Record(fields) = &self.c.nodes[self.node] else {
            return Err(Unsupported);
        };
        Ok(Parts {
            c: self.c,
            out: self.out,
            item: 0,
            fields,
            next: 0,
            len: fields.len(),
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

impl Parts<'_, '_> {
    fn element<T: Serialize + ?Sized>(
        &mut self,
        node: usize,
        value: &T,
    ) -> Result<(), Unsupported> {
        if self.next >= self.len {
            return Err(Unsupported);
        }
        self.next += 1;
        value.serialize(Writer {
            c: self.c,
            node,
            out: self.out,
        })
    }

    fn close_block(self) -> Result<(), Unsupported> {
        if self.next != self.len {
            return Err(Unsupported);
        }
        self.out.push(0);
        Ok(())
    }
}

impl ser::SerializeSeq for Parts<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(self.item, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.close_block()
    }
}

impl ser::SerializeMap for Parts<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        if self.next >= self.len {
            return Err(Unsupported);
        }
        self.next += 1;
        key.serialize(KeyWriter { out: self.out })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(self.item, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.close_block()
    }
}

impl ser::SerializeStruct for Parts<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        match self.fields.get(self.next) {
            Some((name, node)) if name == key => {
                let node = *node;
                self.element(node, value)
            }
            _ => Err(Unsupported),
        }
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn end(self) -> Result<(), Unsupported> {
        if self.next == self.len {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }
}

/// Map keys: strings only.
struct KeyWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<(), Unsupported>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = ser::Impossible<(), Unsupported>;
    type SerializeStruct = ser::Impossible<(), Unsupported>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        zigzag(len_i64(v.len())?, self.out);
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_bool(self, _: bool) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i8(self, _: i8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i16(self, _: i16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i32(self, _: i32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i64(self, _: i64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u8(self, _: u8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u16(self, _: u16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u32(self, _: u32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u64(self, _: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::schema::ResolvedSchema;
    use gregor_event::{Event, Item, Money, OrderEvent, OrderStatus};
    use proptest::prelude::*;
    use serde::Serialize;

    fn reference<T: Serialize>(schema: &Schema, value: &T) -> Vec<u8> {
        let resolved = ResolvedSchema::new(schema).unwrap();
        let mut out = Vec::new();
        apache_avro::writer::datum::write_avro_datum_ref(
            schema,
            resolved.get_names(),
            value,
            &mut out,
        )
        .unwrap();
        out
    }

    fn ours<T: Serialize>(schema: &Schema, value: &T) -> Vec<u8> {
        let compiled = Compiled::new(schema).expect("schema compiles");
        let mut out = Vec::new();
        compiled.write(value, &mut out).expect("value is supported");
        out
    }

    fn arb_order() -> impl Strategy<Value = OrderEvent> {
        (
            ".{0,10}",
            ".{0,10}",
            proptest::sample::select(OrderStatus::ALL.to_vec()),
            -gregor_event::MAX_CENTS..=gregor_event::MAX_CENTS,
            proptest::collection::vec(
                (
                    ".{0,6}",
                    any::<u32>(),
                    -gregor_event::MAX_CENTS..=gregor_event::MAX_CENTS,
                ),
                0..6,
            ),
            any::<i32>(),
        )
            .prop_map(
                |(order_id, user_id, status, amount, items, micros)| OrderEvent {
                    order_id,
                    user_id,
                    status,
                    amount: Money::from_cents(amount).unwrap(),
                    items: items
                        .into_iter()
                        .map(|(product_id, quantity, c)| Item {
                            product_id,
                            quantity,
                            price: Money::from_cents(c).unwrap(),
                        })
                        .collect(),
                    created_at: chrono::DateTime::from_timestamp_micros(i64::from(micros) * 1000)
                        .unwrap(),
                },
            )
    }

    #[test]
    fn unsupported_shapes_are_refused_not_miswritten() {
        let union3 = Schema::parse_str(r#"{"type":"record","name":"U","fields":[{"name":"a","type":["null","int","string"]}]}"#).unwrap();
        assert!(Compiled::new(&union3).is_none());
        let recursive = Schema::parse_str(
            r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#,
        )
        .unwrap();
        assert!(Compiled::new(&recursive).is_none());
        // Fields in another order than the schema's: refused, so apache-avro handles it.
        #[derive(Serialize)]
        struct Swapped {
            b: i32,
            a: i32,
        }
        let ab = Schema::parse_str(r#"{"type":"record","name":"Swapped","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#).unwrap();
        let c = Compiled::new(&ab).unwrap();
        assert!(c.write(&Swapped { b: 1, a: 2 }, &mut Vec::new()).is_err());
        // An int field given a value beyond i32: refused here too.
        #[derive(Serialize)]
        struct Wide {
            a: i64,
            b: i32,
        }
        #[derive(Serialize)]
        #[serde(rename = "Swapped")]
        struct W2 {
            a: i64,
            b: i32,
        }
        let _ = Wide { a: 0, b: 0 };
        assert!(c.write(&W2 { a: i64::MAX, b: 0 }, &mut Vec::new()).is_err());
    }

    #[test]
    fn optional_fields_and_maps_match_apache_avro() {
        #[derive(Serialize)]
        struct Opt {
            a: Option<String>,
            b: Option<i64>,
            m: std::collections::BTreeMap<String, String>,
            f: f64,
            ok: bool,
        }
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"Opt","fields":[
            {"name":"a","type":["null","string"]},{"name":"b","type":["long","null"]},
            {"name":"m","type":{"type":"map","values":"string"}},{"name":"f","type":"double"},
            {"name":"ok","type":"boolean"}]}"#,
        )
        .unwrap();
        for v in [
            Opt {
                a: None,
                b: Some(-3),
                m: Default::default(),
                f: 1.5,
                ok: true,
            },
            Opt {
                a: Some("x".into()),
                b: None,
                m: [("k".to_owned(), "v".to_owned())].into(),
                f: -0.0,
                ok: false,
            },
        ] {
            assert_eq!(ours(&schema, &v), reference(&schema, &v));
        }
    }

    proptest! {
        #[test]
        fn orders_are_written_byte_for_byte_like_apache_avro(order in arb_order()) {
            let schema = Schema::parse_str(gregor_event::avro::ORDER_EVENT).unwrap();
            prop_assert_eq!(ours(&schema, &order), reference(&schema, &order));
        }

        #[test]
        fn envelopes_are_written_byte_for_byte_like_apache_avro(order in arb_order(), meta in proptest::collection::btree_map(".{0,5}", ".{0,5}", 0..4)) {
            use gregor_event::TypedEvent;
            let schema = Schema::parse_str(gregor_event::avro::EVENT).unwrap();
            let mut event: Event = order.to_event("src").unwrap();
            event.metadata = meta;
            prop_assert_eq!(ours(&schema, &event), reference(&schema, &event));
        }
    }
}
