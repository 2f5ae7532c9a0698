//! `serialize-json`: the text format Node's `cluster-client` 3.x uses by default for application
//! objects (the npm package `serialize-json@1.0.3`), as a serde data format.
//!
//! # Layout
//!
//! An encoding is UTF-8 text in five parts joined by `^`. The first four are dictionaries whose
//! entries are joined by `|`: strings, integers, floats and dates, in that order. The fifth is
//! the structure, a tree of tokens that refer to the dictionary entries by position.
//!
//! - The entries of the four parts are numbered in a single sequence, strings first, then
//!   integers, floats and dates. An entry is added each time a value is met, walking the tree
//!   depth first; equal values (and equal object keys) each get an entry of their own.
//! - Strings replace a space with `+` and `+`, `|`, `^`, `%` with `%2B`, `%7C`, `%5E`, `%25`;
//!   nothing else is escaped. The empty string is never an entry.
//! - A number whose value is integral goes to the integer part in upper-case base 36 (`-` for
//!   negatives); any other number goes to the float part as JavaScript prints it (`1.5`, `1e-7`,
//!   `NaN`, `-Infinity`). Dates go to the date part as base-36 milliseconds.
//! - In the structure, an entry is referred to by its number in upper-case base 36; `-1` is
//!   true, `-2` false, `-3` null, `-4` the empty string and `-5` undefined. A container starts
//!   with `@` (array), `$` (object: key, value, key, value…), `*` (Buffer: one integer entry per
//!   byte) or `#` (`Error`: an object whose first keys are `message` and `stack`), lists its
//!   items separated by `|`, and ends with `]`. A value that is not a container is a single
//!   token.
//!
//! For example `{ a: 1, b: [true, 'x y'] }` is `a|b|x+y^1^^^$0|3|1|@-1|2]]`.
//!
//! # Rust types
//!
//! | Rust | encoded as | decoded from |
//! |------|------------|--------------|
//! | `bool` | `-1` / `-2` | the same |
//! | integers | integer entry; magnitudes above 2^53 are refused ([`Error::UnsafeInteger`]) | an integer or date entry that fits the type |
//! | `f32`, `f64` | integer entry when integral (as JavaScript does), float entry otherwise | any number or date entry, read as Node reads it |
//! | `str`, `String`, `char` | string entry, or `-4` when empty | the same |
//! | `()`, `None`, unit structs | `-3` | `-3` or `-5` |
//! | `Some(x)` | `x` | anything else |
//! | sequences, tuples | `@` | `@`, or `*` as a sequence of `u8` |
//! | maps, structs | `$`; map keys become strings (`1` → `"1"`, as in JavaScript) | `$` or `#` (a struct also from `@`, its fields in order) |
//! | bytes (`serialize_bytes`) | `*` | `*` |
//! | enums | unit variant: its name; others: `$` with one key, the name | the same |
//! | [`Date`] | date entry | date or integer entry |
//! | [`Undefined`] | `-5` | `-5` |
//! | a struct named [`ERROR_STRUCT_NAME`] | `#` | `#` or `$` |
//!
//! Self-describing decoding (`deserialize_any`, as `serde_json::Value` uses) gives integers as
//! `i64` or `u64` when they fit and as Node's double otherwise, floats as `f64`, dates as their
//! milliseconds, undefined as unit (null), a Buffer as a sequence of `u8`, and an `Error` as a map
//! of its properties.
//!
//! # Strictness
//!
//! Node's decoder accepts almost any text and guesses. This one refuses what Node's encoder
//! could not have written, with a typed [`Error`]: a missing or extra part, an empty or
//! malformed entry, an unknown `%` escape, a reference past the end of the dictionary or to an
//! entry already referred to, a misplaced or missing `|` or `]`, an object with a key but no
//! value, a Buffer item outside 0..=255, containers nested deeper than [`MAX_DEPTH`], and anything
//! after the top-level value. Decoding allocates no more than a small multiple of the input: there
//! are no counts to trust, the dictionary index costs one `usize` per entry (each takes at least
//! one byte), and since an entry may be referred to once only, a short structure cannot make the
//! decoded value much larger than the text it came from.
//!
//! ```
//! use cluster_client::serialize_json;
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Call {
//!     method: String,
//!     args: Vec<u32>,
//!     ok: bool,
//! }
//!
//! let call = Call { method: "get user".into(), args: vec![1, 36], ok: true };
//! let bytes = serialize_json::to_vec(&call)?;
//! assert_eq!(bytes, b"method|get+user|args|ok^1|10^^^$0|1|2|@4|5]|3|-1]");
//! assert_eq!(serialize_json::from_slice::<Call>(&bytes)?, call);
//! # Ok::<(), serialize_json::Error>(())
//! ```

mod de;
mod de_access;
mod de_key;
mod dictionary;
mod error;
mod escape;
mod markers;
mod number;
mod ser;
mod ser_compound;
mod ser_date;
mod ser_key;
mod structure;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use error::{Error, Section};
pub use markers::{Date, ERROR_STRUCT_NAME, Undefined};

/// How deeply containers may nest, counting each `@`, `$`, `*` and `#` (an enum variant's
/// one-key object included). Both directions refuse deeper values with [`Error::DepthLimit`].
pub const MAX_DEPTH: usize = 128;

/// Encodes `value` as `serialize-json` text, byte for byte as Node would encode the same
/// JavaScript value.
///
/// # Errors
///
/// [`Error::UnsafeInteger`] for an integer beyond ±2^53, [`Error::KeyMustBeString`] for a map key
/// with no text form, [`Error::DepthLimit`], [`Error::DateOutOfRange`], or the value's own
/// [`Error::Message`].
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut encoder = ser::Encoder::default();
    value.serialize(&mut encoder)?;
    encoder.finish()
}

/// Decodes one value from `serialize-json` text; strings without escapes are borrowed from
/// `bytes`.
///
/// # Errors
///
/// Any [`Error`] describing malformed input, or a mismatch between the input and `T`.
pub fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut de = de::Deserializer::new(text)?;
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}
