//! The items of arrays, objects and the containers of enum variants, for the encoder.

use serde::Serialize;
use serde::ser::{
    SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant,
};

use super::error::Error;
use super::ser::{Encoder, serialize_key};

/// An open container: its items go to the encoder, and its end closes `closes` containers (two
/// for a tuple or struct variant, whose content sits in a one-key object).
pub(crate) struct Compound<'a> {
    encoder: &'a mut Encoder,
    closes: u8,
}

impl<'a> Compound<'a> {
    pub(crate) fn new(encoder: &'a mut Encoder, closes: u8) -> Self {
        Compound { encoder, closes }
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.encoder)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.encoder.string(key);
        self.value(value)
    }

    fn finish(self) -> Result<(), Error> {
        for _ in 0..self.closes {
            self.encoder.close();
        }
        Ok(())
    }
}

/// The serde traits of a container whose items are plain values, one after the other: a sequence,
/// a tuple, a tuple struct, a tuple variant's fields.
macro_rules! items {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(
            impl $trait for Compound<'_> {
                type Ok = ();
                type Error = Error;

                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                    self.value(value)
                }

                fn end(self) -> Result<(), Error> {
                    self.finish()
                }
            }
        )*
    };
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        serialize_key(self.encoder, key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value(value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}
