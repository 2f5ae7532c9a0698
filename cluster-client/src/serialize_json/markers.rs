//! Rust stand-ins for the JavaScript values that have no serde shape of their own.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// The struct name that makes this format write a struct as a JavaScript `Error` (`#`) rather
/// than as a plain object (`$`).
///
/// Give it with `#[serde(rename = "$serialize_json::Error")]`; list `message` and `stack` first,
/// as Node does. Other serde formats only see a struct with an odd name. On decoding, an `Error`
/// reads as a map of its properties whether or not the struct carries this name.
///
/// ```
/// use cluster_client::serialize_json;
///
/// #[derive(serde::Serialize)]
/// #[serde(rename = "$serialize_json::Error")]
/// struct Failure<'a> {
///     message: &'a str,
///     stack: &'a str,
///     code: &'a str,
/// }
///
/// let bytes = serialize_json::to_vec(&Failure { message: "oops", stack: "Error: oops", code: "E" })?;
/// assert_eq!(bytes, b"message|oops|stack|Error:+oops|code|E^^^^#0|1|2|3|4|5]");
/// # Ok::<(), serialize_json::Error>(())
/// ```
pub const ERROR_STRUCT_NAME: &str = "$serialize_json::Error";

/// The newtype name [`Date`] serializes with.
pub(crate) const DATE_NAME: &str = "$serialize_json::Date";

/// The unit struct name [`Undefined`] serializes with.
pub(crate) const UNDEFINED_NAME: &str = "$serialize_json::Undefined";

/// The largest magnitude a JavaScript `Date` may have, in milliseconds.
pub(crate) const MAX_DATE_MILLIS: i128 = 8_640_000_000_000_000;

/// A JavaScript `Date`: milliseconds since the Unix epoch.
///
/// This format writes it to the date part of the dictionary, so Node reads a `Date`; other serde
/// formats see the plain integer. It decodes from a date or an integer. Plain integer types decode
/// from a date too (its milliseconds), so a field need not use this type just to read one.
///
/// ```
/// use cluster_client::serialize_json::{self, Date};
///
/// assert_eq!(serialize_json::to_vec(&Date(1_700_000_000_000))?, b"^^^LOYW3V28^0");
/// let ms: i64 = serialize_json::from_slice(b"^^^LOYW3V28^0")?;
/// assert_eq!(ms, 1_700_000_000_000);
/// # Ok::<(), serialize_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i64);

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(DATE_NAME, &self.0)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;

        impl<'de> Visitor<'de> for DateVisitor {
            type Value = Date;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date in milliseconds")
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Date, D::Error> {
                i64::deserialize(deserializer).map(Date)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Date, E> {
                Ok(Date(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Date, E> {
                i64::try_from(v)
                    .map(Date)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }

        deserializer.deserialize_newtype_struct(DATE_NAME, DateVisitor)
    }
}

/// JavaScript's `undefined`.
///
/// This format writes it as the `undefined` token (`-5`) rather than `null` (`-3`); other serde
/// formats see a unit struct. It decodes only from `undefined`. `Option::None` decodes from both
/// `null` and `undefined`, so a field that may be missing on the Node side is best an `Option`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Undefined;

impl Serialize for Undefined {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit_struct(UNDEFINED_NAME)
    }
}

impl<'de> Deserialize<'de> for Undefined {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UndefinedVisitor;

        impl<'de> Visitor<'de> for UndefinedVisitor {
            type Value = Undefined;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("undefined")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Undefined, E> {
                Ok(Undefined)
            }
        }

        deserializer.deserialize_unit_struct(UNDEFINED_NAME, UndefinedVisitor)
    }
}
