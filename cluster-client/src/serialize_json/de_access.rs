//! The items of containers and the one-key objects of enum variants, for the decoder.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::de::Deserializer;
use super::de_key::KeyDeserializer;
use super::error::{Error, Section};
use super::structure::{Atom, Token};

/// The items of an open container, separated by `|`.
pub(crate) struct Items<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    opened_at: usize,
    first: bool,
}

impl<'a, 'de> Items<'a, 'de> {
    /// The items of the container whose opener was consumed at `opened_at`.
    pub(crate) fn new(de: &'a mut Deserializer<'de>, opened_at: usize) -> Self {
        Items {
            de,
            opened_at,
            first: true,
        }
    }

    pub(crate) fn deserializer(&mut self) -> &mut Deserializer<'de> {
        self.de
    }

    /// Moves to the start of the next item; `false` at the `]`, which is left for the container.
    pub(crate) fn advance(&mut self) -> Result<bool, Error> {
        match self.de.peek()? {
            None => Err(Error::MissingClose {
                opened_at: self.opened_at,
            }),
            Some((Token::Close, _)) => Ok(false),
            Some((Token::Separator, len)) if !self.first => {
                self.de.advance(len);
                Ok(true)
            }
            Some((Token::Separator, _)) => Err(self.de.unexpected("a value or `]`")),
            Some(_) if self.first => {
                self.first = false;
                Ok(true)
            }
            Some(_) => Err(self.de.unexpected("`|` or `]`")),
        }
    }
}

/// Reads an object key: a string entry or the empty string, nothing else.
fn read_key<'de>(de: &mut Deserializer<'de>) -> Result<KeyDeserializer<'de>, Error> {
    let offset = de.offset();
    let key = match de.peek()? {
        Some((Token::Atom(atom @ Atom::EmptyString), len)) => {
            de.take(atom, len)?;
            Cow::Borrowed("")
        }
        Some((Token::Atom(atom @ Atom::Entry(entry)), len))
            if entry.section == Section::Strings =>
        {
            de.take(atom, len)?;
            Deserializer::string(entry)?
        }
        None => return Err(Error::UnexpectedEnd { offset }),
        Some((Token::Close | Token::Separator, _)) => return Err(de.unexpected("a key")),
        Some(_) => return Err(Error::KeyNotString { offset }),
    };
    Ok(KeyDeserializer::new(key, offset))
}

/// Consumes the `|` between a key and its value.
fn key_separator(de: &mut Deserializer<'_>, opened_at: usize) -> Result<(), Error> {
    match de.peek()? {
        Some((Token::Separator, len)) => {
            de.advance(len);
            Ok(())
        }
        None => Err(Error::MissingClose { opened_at }),
        Some(_) => Err(de.unexpected("`|` and the value of the key before it")),
    }
}

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if !self.advance()? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

impl<'de> MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.advance()? {
            return Ok(None);
        }
        seed.deserialize(read_key(self.de)?).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        key_separator(self.de, self.opened_at)?;
        seed.deserialize(&mut *self.de)
    }
}

/// The inside of a one-key object that holds an enum variant: the key names the variant, the
/// value holds its content.
pub(crate) struct VariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    opened_at: usize,
}

impl<'a, 'de> VariantAccess<'a, 'de> {
    /// The variant in the object whose `$` was consumed at `opened_at`.
    pub(crate) fn new(de: &'a mut Deserializer<'de>, opened_at: usize) -> Self {
        VariantAccess { de, opened_at }
    }
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let variant = seed.deserialize(read_key(self.de)?)?;
        key_separator(self.de, self.opened_at)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
}
