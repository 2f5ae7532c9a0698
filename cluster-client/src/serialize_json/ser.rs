//! The encoder: a serde `Serializer` that fills the four dictionary parts and a token list, then
//! lays them out.

use serde::Serialize;
use serde::ser::Serializer;

use super::MAX_DEPTH;
use super::error::{Error, Section};
use super::escape::escape_into;
use super::markers::{DATE_NAME, ERROR_STRUCT_NAME, MAX_DATE_MILLIS, UNDEFINED_NAME};
use super::number::{self, MAX_EXACT};
use super::ser_compound::Compound;
use super::ser_date::DateSerializer;
use super::ser_key::KeySerializer;
use super::structure::Container;

/// One token of the structure being built. Dictionary references keep their position within
/// their part until the end, when the sizes of the parts before it are known.
enum Token {
    Open(Container),
    Close,
    Entry(Section, usize),
    Fixed(&'static str),
}

/// One dictionary part being built: its entries joined by `|`.
#[derive(Default)]
struct Part {
    text: String,
    len: usize,
}

/// The state of one encoding.
#[derive(Default)]
pub(crate) struct Encoder {
    parts: [Part; 4],
    tokens: Vec<Token>,
    depth: usize,
}

impl Encoder {
    /// Starts a new entry in `section`, references it from the structure, and returns the part's
    /// text to write the entry to.
    fn entry(&mut self, section: Section) -> &mut String {
        let part = &mut self.parts[section.position()];
        if part.len > 0 {
            part.text.push('|');
        }
        self.tokens.push(Token::Entry(section, part.len));
        part.len += 1;
        &mut part.text
    }

    pub(crate) fn fixed(&mut self, token: &'static str) {
        self.tokens.push(Token::Fixed(token));
    }

    /// A string value or key: the empty string has a token of its own.
    pub(crate) fn string(&mut self, s: &str) {
        if s.is_empty() {
            self.fixed("-4");
        } else {
            escape_into(self.entry(Section::Strings), s);
        }
    }

    /// An integer, refused beyond ±2^53 where a JavaScript number would round it.
    pub(crate) fn integer(&mut self, value: i128) -> Result<(), Error> {
        if value.unsigned_abs() > MAX_EXACT {
            return Err(Error::UnsafeInteger {
                value: value.to_string(),
            });
        }
        number::push_base36(
            self.entry(Section::Integers),
            value < 0,
            value.unsigned_abs(),
        );
        Ok(())
    }

    /// A double: an integral value up to ±2^53 to the integer part, as JavaScript writes it; any
    /// other to the float part. Node writes an integral value beyond 2^53 to the integer part too,
    /// in base-36 digits that read back rounded (`1e300` as `1.0000000000000006e300`); in the float
    /// part it reads back exactly, in Node as here.
    pub(crate) fn number(&mut self, value: f64) {
        if value.is_finite() && value.fract() == 0.0 && value.abs() <= MAX_EXACT as f64 {
            number::push_integral_f64(self.entry(Section::Integers), value);
        } else {
            let text = number::js_number_to_string(value);
            self.entry(Section::Floats).push_str(&text);
        }
    }

    /// A `Date` in milliseconds since the epoch.
    pub(crate) fn date(&mut self, millis: i128) -> Result<(), Error> {
        if millis.unsigned_abs() > MAX_DATE_MILLIS.unsigned_abs() {
            return Err(Error::DateOutOfRange {
                millis: millis.to_string(),
            });
        }
        number::push_base36(
            self.entry(Section::Dates),
            millis < 0,
            millis.unsigned_abs(),
        );
        Ok(())
    }

    pub(crate) fn open(&mut self, container: Container) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::DepthLimit { limit: MAX_DEPTH });
        }
        self.depth += 1;
        self.tokens.push(Token::Open(container));
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.tokens.push(Token::Close);
    }

    /// Lays out the dictionary parts and the structure.
    pub(crate) fn finish(self) -> Result<Vec<u8>, Error> {
        if self.tokens.is_empty() {
            return Err(Error::Message(
                "the Serialize implementation wrote no value".to_owned(),
            ));
        }
        let mut first_index = [0usize; 4];
        let mut total = 0;
        for (first, part) in first_index.iter_mut().zip(&self.parts) {
            *first = total;
            total += part.len;
        }
        let capacity =
            self.parts.iter().map(|p| p.text.len() + 1).sum::<usize>() + self.tokens.len() * 3;
        let mut out = String::with_capacity(capacity);
        for part in &self.parts {
            out.push_str(&part.text);
            out.push('^');
        }
        // An item is preceded by `|` unless it is the first of its container; `]` never is.
        let mut after_open = true;
        for token in &self.tokens {
            let closing = matches!(token, Token::Close);
            if !after_open && !closing {
                out.push('|');
            }
            match token {
                Token::Open(container) => out.push(container.opener()),
                Token::Close => out.push(']'),
                Token::Entry(section, index) => {
                    let global = first_index[section.position()] + index;
                    number::push_base36(&mut out, false, global as u128);
                }
                Token::Fixed(text) => out.push_str(text),
            }
            after_open = matches!(token, Token::Open(_));
        }
        Ok(out.into_bytes())
    }
}

impl<'a> Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.fixed(if v { "-1" } else { "-2" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.integer(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.integer(v.into())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        let v = i128::try_from(v).map_err(|_| Error::UnsafeInteger {
            value: v.to_string(),
        })?;
        self.integer(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.number(number::widen_f32(v));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.number(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.open(Container::Buffer)?;
        for &byte in v {
            number::push_base36(self.entry(Section::Integers), false, byte.into());
        }
        self.close();
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.fixed("-3");
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.fixed("-3");
        Ok(())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        self.fixed(if name == UNDEFINED_NAME { "-5" } else { "-3" });
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name == DATE_NAME {
            value.serialize(DateSerializer { encoder: self })
        } else {
            value.serialize(self)
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open(Container::Object)?;
        self.string(variant);
        value.serialize(&mut *self)?;
        self.close();
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.open(Container::Array)?;
        Ok(Compound::new(self, 1))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.open(Container::Object)?;
        self.string(variant);
        self.open(Container::Array)?;
        Ok(Compound::new(self, 2))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        self.open(Container::Object)?;
        Ok(Compound::new(self, 1))
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'a>, Error> {
        self.open(if name == ERROR_STRUCT_NAME {
            Container::JsError
        } else {
            Container::Object
        })?;
        Ok(Compound::new(self, 1))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.open(Container::Object)?;
        self.string(variant);
        self.open(Container::Object)?;
        Ok(Compound::new(self, 2))
    }
}

/// Serializes a map key: JavaScript object keys are strings, so numbers and bools become their
/// text, as `String(key)` would make them.
pub(crate) fn serialize_key<T: Serialize + ?Sized>(
    encoder: &mut Encoder,
    key: &T,
) -> Result<(), Error> {
    key.serialize(KeySerializer { encoder })
}
