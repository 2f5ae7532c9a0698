//! The decoder: a serde `Deserializer` that walks the structure and looks values up in the
//! dictionary as it meets them.

use std::borrow::Cow;

use serde::de::value::SeqDeserializer;
use serde::de::{self, Expected, IntoDeserializer, Unexpected, Visitor};

use super::MAX_DEPTH;
use super::de_access::{Items, VariantAccess};
use super::dictionary::{Dictionary, Entry};
use super::error::{Error, Section};
use super::escape;
use super::markers::UNDEFINED_NAME;
use super::number;
use super::structure::{Atom, Container, Reader, Token};

/// The start of a value: a container's opener or a whole single-token value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start<'de> {
    Open(Container),
    Atom(Atom<'de>),
}

/// The state of one decoding.
pub(crate) struct Deserializer<'de> {
    dict: Dictionary<'de>,
    reader: Reader<'de>,
    depth: usize,
    /// One bit per dictionary entry: whether the structure referred to it already.
    used: Vec<u64>,
}

impl<'de> Deserializer<'de> {
    /// Splits and checks the dictionary; the structure is read as the value is deserialized.
    pub(crate) fn new(input: &'de str) -> Result<Self, Error> {
        let (dict, structure, base) = Dictionary::parse(input)?;
        let used = vec![0; dict.len().div_ceil(64)];
        Ok(Deserializer {
            dict,
            reader: Reader::new(structure, base),
            depth: 0,
            used,
        })
    }

    /// Refuses anything after the top-level value.
    pub(crate) fn end(&self) -> Result<(), Error> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(Error::TrailingInput {
                offset: self.offset(),
            }),
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.reader.offset()
    }

    pub(crate) fn peek(&self) -> Result<Option<(Token<'de>, usize)>, Error> {
        self.reader.peek(&self.dict)
    }

    /// Consumes a punctuation token (`len` bytes) that `peek` returned.
    pub(crate) fn advance(&mut self, len: usize) {
        self.reader.advance(len);
    }

    /// Consumes a single-token value (`len` bytes) that `peek` returned; a dictionary entry may
    /// be consumed only once.
    pub(crate) fn take(&mut self, atom: Atom<'de>, len: usize) -> Result<(), Error> {
        if let Atom::Entry(entry) = atom {
            let bit = 1u64 << (entry.index % 64);
            if let Some(word) = self.used.get_mut(entry.index / 64) {
                if *word & bit != 0 {
                    return Err(Error::ReusedIndex {
                        offset: self.offset(),
                        index: entry.index,
                    });
                }
                *word |= bit;
            }
        }
        self.reader.advance(len);
        Ok(())
    }

    /// An error for the token at the cursor.
    pub(crate) fn unexpected(&self, expected: &'static str) -> Error {
        Error::UnexpectedToken {
            offset: self.offset(),
            found: self.reader.current_char(),
            expected,
        }
    }

    /// The start of the next value, without consuming it.
    fn peek_start(&self) -> Result<(Start<'de>, usize), Error> {
        match self.peek()? {
            None => Err(Error::UnexpectedEnd {
                offset: self.offset(),
            }),
            Some((Token::Open(container), len)) => Ok((Start::Open(container), len)),
            Some((Token::Atom(atom), len)) => Ok((Start::Atom(atom), len)),
            Some((Token::Close | Token::Separator, _)) => Err(self.unexpected("a value")),
        }
    }

    /// Consumes the start of the next value; returns it with its offset.
    fn next_start(&mut self) -> Result<(Start<'de>, usize), Error> {
        let offset = self.offset();
        let (start, len) = self.peek_start()?;
        match start {
            Start::Atom(atom) => self.take(atom, len)?,
            Start::Open(_) => self.advance(len),
        }
        Ok((start, offset))
    }

    /// Counts one more level of nesting.
    fn enter(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::DepthLimit { limit: MAX_DEPTH });
        }
        self.depth += 1;
        Ok(())
    }

    /// Consumes the `]` of the container opened at `opened_at`.
    pub(crate) fn leave(&mut self, opened_at: usize) -> Result<(), Error> {
        match self.peek()? {
            Some((Token::Close, len)) => {
                self.advance(len);
                self.depth = self.depth.saturating_sub(1);
                Ok(())
            }
            None => Err(Error::MissingClose { opened_at }),
            Some((Token::Separator, _)) => {
                Err(self.unexpected("`]`: the container holds more items than the type takes"))
            }
            Some(_) => Err(self.unexpected("`|` or `]`")),
        }
    }

    /// The text of a string entry.
    pub(crate) fn string(entry: Entry<'de>) -> Result<Cow<'de, str>, Error> {
        escape::unescape(entry.text).map_err(|at| Error::InvalidEscape {
            entry: entry.number,
            offset: entry.offset + at,
        })
    }

    /// The error for a value of the wrong kind.
    fn invalid_type(start: Start<'_>, expected: &dyn Expected) -> Error {
        let found = match start {
            Start::Open(Container::Array) => Unexpected::Seq,
            Start::Open(Container::Object) => Unexpected::Map,
            Start::Open(Container::Buffer) => Unexpected::Other("Buffer"),
            Start::Open(Container::JsError) => Unexpected::Other("Error object"),
            Start::Atom(Atom::Bool(b)) => Unexpected::Bool(b),
            Start::Atom(Atom::Null) => Unexpected::Other("null"),
            Start::Atom(Atom::Undefined) => Unexpected::Other("undefined"),
            Start::Atom(Atom::EmptyString) => Unexpected::Str(""),
            Start::Atom(Atom::Entry(entry)) => match entry.section {
                Section::Strings => Unexpected::Other("string"),
                Section::Integers => Unexpected::Other("integer"),
                Section::Floats => Unexpected::Other("float"),
                Section::Dates => Unexpected::Other("date"),
            },
        };
        de::Error::invalid_type(found, expected)
    }

    /// The exact value of the next value, which must be an integer or a date.
    fn next_integer(
        &mut self,
        target: &'static str,
        expected: &dyn Expected,
    ) -> Result<(i128, usize), Error> {
        match self.next_start()? {
            (Start::Atom(Atom::Entry(entry)), offset)
                if matches!(entry.section, Section::Integers | Section::Dates) =>
            {
                let n = number::parse_base36_exact(entry.text)
                    .ok_or(Error::NumberOutOfRange { offset, target })?;
                // Beyond ±2^53 Node holds a rounded double, not this integer (and the encoder
                // refuses such an integer): not a value for an integer type.
                if n.unsigned_abs() > number::MAX_EXACT {
                    return Err(Error::UnsafeInteger {
                        value: n.to_string(),
                    });
                }
                Ok((n, offset))
            }
            (start, _) => Err(Self::invalid_type(start, expected)),
        }
    }

    /// The value of the next value as a double, as Node would read it.
    fn next_f64(&mut self, expected: &dyn Expected) -> Result<f64, Error> {
        match self.next_start()? {
            (Start::Atom(Atom::Entry(entry)), _) => match entry.section {
                Section::Integers | Section::Dates => Ok(number::parse_base36_js(entry.text)),
                Section::Floats => Ok(number::parse_js_float(entry.text).unwrap_or(f64::NAN)),
                Section::Strings => Err(Self::invalid_type(
                    Start::Atom(Atom::Entry(entry)),
                    expected,
                )),
            },
            (start, _) => Err(Self::invalid_type(start, expected)),
        }
    }

    /// Reads the items of a Buffer whose `*` was consumed at `opened_at`, and its `]`.
    fn buffer(&mut self, opened_at: usize) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        let mut items = Items::new(self, opened_at);
        while items.advance()? {
            let de = items.deserializer();
            let offset = de.offset();
            let byte = match de.next_start()? {
                (Start::Atom(Atom::Entry(entry)), _) if entry.section == Section::Integers => {
                    number::parse_base36_exact(entry.text).and_then(|n| u8::try_from(n).ok())
                }
                _ => None,
            };
            bytes.push(byte.ok_or(Error::InvalidBufferItem { offset })?);
        }
        self.leave(opened_at)?;
        Ok(bytes)
    }

    /// Hands the container whose opener was consumed at `opened_at` to `visitor`.
    fn visit_container<V: Visitor<'de>>(
        &mut self,
        container: Container,
        opened_at: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.enter()?;
        let value = match container {
            Container::Array => visitor.visit_seq(Items::new(self, opened_at))?,
            Container::Object | Container::JsError => {
                visitor.visit_map(Items::new(self, opened_at))?
            }
            Container::Buffer => {
                let bytes = self.buffer(opened_at)?;
                let mut seq = SeqDeserializer::new(bytes.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                return Ok(value);
            }
        };
        self.leave(opened_at)?;
        Ok(value)
    }

    /// Hands a number entry to `visitor`: an integer up to ±2^53 exactly, as `i64`/`u64`; beyond,
    /// the double Node reads (the encoder never writes an integer past 2^53).
    fn visit_number<V: Visitor<'de>>(entry: Entry<'de>, visitor: V) -> Result<V::Value, Error> {
        if entry.section == Section::Floats {
            return visitor.visit_f64(number::parse_js_float(entry.text).unwrap_or(f64::NAN));
        }
        match number::parse_base36_exact(entry.text) {
            Some(n) if n.unsigned_abs() <= number::MAX_EXACT => match i64::try_from(n) {
                Ok(n) if n < 0 => visitor.visit_i64(n),
                Ok(n) => visitor.visit_u64(n.unsigned_abs()),
                Err(_) => visitor.visit_f64(number::parse_base36_js(entry.text)),
            },
            _ => visitor.visit_f64(number::parse_base36_js(entry.text)),
        }
    }

    /// Hands a string to `visitor`, borrowed from the input when it holds no escape.
    fn visit_string<V: Visitor<'de>>(entry: Entry<'de>, visitor: V) -> Result<V::Value, Error> {
        match Self::string(entry)? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }
}

macro_rules! deserialize_integer {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                let target = stringify!($ty);
                let (n, offset) = self.next_integer(target, &visitor)?;
                let n = <$ty>::try_from(n).map_err(|_| Error::NumberOutOfRange { offset, target })?;
                visitor.$visit(n)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Open(container), offset) => self.visit_container(container, offset, visitor),
            (Start::Atom(atom), _) => match atom {
                Atom::Bool(b) => visitor.visit_bool(b),
                Atom::Null | Atom::Undefined => visitor.visit_unit(),
                Atom::EmptyString => visitor.visit_borrowed_str(""),
                Atom::Entry(entry) if entry.section == Section::Strings => {
                    Deserializer::visit_string(entry, visitor)
                }
                Atom::Entry(entry) => Deserializer::visit_number(entry, visitor),
            },
        }
    }

    deserialize_integer! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Rounded once, from the text or the exact integer, rather than through a double.
        let value = match self.peek_start()? {
            (Start::Atom(atom @ Atom::Entry(entry)), len) if entry.section != Section::Strings => {
                self.take(atom, len)?;
                number::entry_to_f32(entry.section, entry.text)
            }
            _ => self.next_f64(&visitor)? as f32,
        };
        visitor.visit_f32(value)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let value = self.next_f64(&visitor)?;
        visitor.visit_f64(value)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Atom(Atom::Bool(b)), _) => visitor.visit_bool(b),
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Atom(Atom::EmptyString), _) => visitor.visit_borrowed_str(""),
            (Start::Atom(Atom::Entry(entry)), _) if entry.section == Section::Strings => {
                Deserializer::visit_string(entry, visitor)
            }
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek_start()? {
            (Start::Open(Container::Buffer), len) => {
                let opened_at = self.offset();
                self.advance(len);
                self.enter()?;
                let bytes = self.buffer(opened_at)?;
                visitor.visit_byte_buf(bytes)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek_start()? {
            (Start::Atom(atom @ (Atom::Null | Atom::Undefined)), len) => {
                self.take(atom, len)?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Atom(Atom::Null | Atom::Undefined), _) => visitor.visit_unit(),
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name != UNDEFINED_NAME {
            return self.deserialize_unit(visitor);
        }
        match self.next_start()? {
            (Start::Atom(Atom::Undefined), _) => visitor.visit_unit(),
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Open(container @ (Container::Array | Container::Buffer)), offset) => {
                self.visit_container(container, offset, visitor)
            }
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Open(container @ (Container::Object | Container::JsError)), offset) => {
                self.visit_container(container, offset, visitor)
            }
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.next_start()? {
            (
                Start::Open(
                    container @ (Container::Object | Container::JsError | Container::Array),
                ),
                offset,
            ) => self.visit_container(container, offset, visitor),
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.next_start()? {
            (Start::Atom(Atom::EmptyString), _) => {
                visitor.visit_enum(Cow::Borrowed("").into_deserializer())
            }
            (Start::Atom(Atom::Entry(entry)), _) if entry.section == Section::Strings => {
                visitor.visit_enum(Deserializer::string(entry)?.into_deserializer())
            }
            (Start::Open(Container::Object), opened_at) => {
                self.enter()?;
                if let Some((Token::Close, _)) = self.peek()? {
                    return Err(Error::InvalidType {
                        found: "an empty object".to_owned(),
                        expected: "an object with one key, the variant's name".to_owned(),
                    });
                }
                let value = visitor.visit_enum(VariantAccess::new(self, opened_at))?;
                self.leave(opened_at)?;
                Ok(value)
            }
            (start, _) => Err(Deserializer::invalid_type(start, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek_start()? {
            // A single token needs no look-up of its text (and no unescaping).
            (Start::Atom(atom), len) => {
                self.take(atom, len)?;
                visitor.visit_unit()
            }
            (Start::Open(_), _) => self.deserialize_any(visitor),
        }
    }
}
