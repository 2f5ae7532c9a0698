//! The deserializer of object keys: JavaScript keys are strings, so a Rust map with integer (or
//! bool, float, char, enum) keys reads them from their text.

use std::borrow::Cow;

use serde::de::{self, IntoDeserializer, Visitor};

use super::error::Error;
use super::number;

/// One object key, already unescaped.
pub(crate) struct KeyDeserializer<'de> {
    key: Cow<'de, str>,
    offset: usize,
}

impl<'de> KeyDeserializer<'de> {
    /// The key read at `offset`.
    pub(crate) fn new(key: Cow<'de, str>, offset: usize) -> Self {
        KeyDeserializer { key, offset }
    }

    /// The error for a key that is not a number of the type asked for.
    fn not_a(&self, target: &'static str) -> Error {
        if self.key.parse::<i128>().is_ok() {
            Error::NumberOutOfRange {
                offset: self.offset,
                target,
            }
        } else {
            Error::InvalidType {
                found: format!("object key {:?}", self.key),
                expected: target.to_owned(),
            }
        }
    }
}

macro_rules! number_key {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.key.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(self.not_a(stringify!($ty))),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.key {
            Cow::Borrowed(key) => visitor.visit_borrowed_str(key),
            Cow::Owned(key) => visitor.visit_string(key),
        }
    }

    number_key! {
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
        match number::parse_js_float(&self.key) {
            Some(n) => visitor.visit_f32(n as f32),
            None => Err(self.not_a("f32")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match number::parse_js_float(&self.key) {
            Some(n) => visitor.visit_f64(n),
            None => Err(self.not_a("f64")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &*self.key {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.not_a("bool")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.key.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
