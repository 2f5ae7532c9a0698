//! The error type shared by the encoder and the decoder.

use std::fmt;

/// One of the four dictionary parts that precede the structure, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// Escaped, non-empty strings (object keys included).
    Strings,
    /// Integral numbers in upper-case base 36.
    Integers,
    /// Non-integral numbers (and `NaN`, `Infinity`, `-Infinity`) as JavaScript prints them.
    Floats,
    /// `Date`s as base-36 milliseconds since the Unix epoch.
    Dates,
}

impl Section {
    /// The part's position on the wire, from 0.
    pub(crate) fn position(self) -> usize {
        match self {
            Section::Strings => 0,
            Section::Integers => 1,
            Section::Floats => 2,
            Section::Dates => 3,
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Strings => "string",
            Section::Integers => "integer",
            Section::Floats => "float",
            Section::Dates => "date",
        })
    }
}

/// Why a value could not be encoded, or bytes could not be decoded.
///
/// Byte offsets count from the start of the whole input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not UTF-8 text.
    #[error("input is not valid UTF-8 (first bad byte at {offset})")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },
    /// The input has fewer than the five `^`-separated parts (four dictionaries and a structure).
    #[error("expected five parts separated by `^`, found {found}")]
    MissingSection {
        /// How many parts there are.
        found: usize,
    },
    /// A dictionary entry is empty or is not what its part holds.
    #[error("{section} dictionary entry {entry} at byte {offset} is malformed: {reason}")]
    MalformedDictionary {
        /// The part the entry is in.
        section: Section,
        /// The entry's position within its part, from 0.
        entry: usize,
        /// Offset of the entry's first byte.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string entry holds a `%` that does not start one of `%2B`, `%7C`, `%5E`, `%25`.
    #[error("string dictionary entry {entry} has an invalid escape at byte {offset}")]
    InvalidEscape {
        /// The entry's position within the string part, from 0.
        entry: usize,
        /// Offset of the `%`.
        offset: usize,
    },
    /// A structure token is neither a base-36 index nor one of the tokens `-1` to `-5`.
    #[error("structure token at byte {offset} is neither a dictionary index nor one of -1 to -5")]
    InvalidReference {
        /// Offset of the token.
        offset: usize,
    },
    /// A structure token refers past the end of the dictionary.
    #[error(
        "structure token at byte {offset} refers to dictionary entry {index}, but there are {len}"
    )]
    DanglingIndex {
        /// Offset of the token.
        offset: usize,
        /// The index it holds.
        index: u64,
        /// How many entries the four parts hold together.
        len: usize,
    },
    /// A structure token refers to an entry an earlier token referred to. Node's encoder refers
    /// to each entry once; refusing a second reference keeps a short input from standing for a
    /// long one (`@0|0|0…` over one long string).
    #[error(
        "structure token at byte {offset} refers again to dictionary entry {index}, which Node's \
         encoder never does"
    )]
    ReusedIndex {
        /// Offset of the token.
        offset: usize,
        /// The index it holds.
        index: usize,
    },
    /// The structure ends inside a container.
    #[error("the container opened at byte {opened_at} is not closed by `]`")]
    MissingClose {
        /// Offset of the container's opening token.
        opened_at: usize,
    },
    /// The structure ends where a value should start.
    #[error("the structure ends at byte {offset} where a value was expected")]
    UnexpectedEnd {
        /// Offset of the end.
        offset: usize,
    },
    /// A token stands where the grammar does not allow it.
    #[error("unexpected `{found}` at byte {offset}: expected {expected}")]
    UnexpectedToken {
        /// Offset of the token.
        offset: usize,
        /// Its first character.
        found: char,
        /// What the decoder expected there.
        expected: &'static str,
    },
    /// An object (`$` or `#`) has a key that is not a string.
    #[error("object key at byte {offset} is not a string")]
    KeyNotString {
        /// Offset of the key.
        offset: usize,
    },
    /// A Buffer (`*`) item is not an integer from 0 to 255.
    #[error("Buffer item at byte {offset} is not an integer from 0 to 255")]
    InvalidBufferItem {
        /// Offset of the item.
        offset: usize,
    },
    /// A number does not fit the Rust type asked for.
    #[error("the number at byte {offset} does not fit {target}")]
    NumberOutOfRange {
        /// Offset of the structure token (or key) that holds it.
        offset: usize,
        /// The Rust type asked for.
        target: &'static str,
    },
    /// The input holds a different kind of value than the Rust type asked for.
    #[error("invalid type: {found}, expected {expected}")]
    InvalidType {
        /// What the input holds.
        found: String,
        /// What the Rust type asked for.
        expected: String,
    },
    /// Containers are nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("containers are nested deeper than {limit}")]
    DepthLimit {
        /// The limit.
        limit: usize,
    },
    /// Something follows the one top-level value.
    #[error("trailing input at byte {offset}")]
    TrailingInput {
        /// Offset of the first byte that follows.
        offset: usize,
    },
    /// An integer's magnitude is above 2^53, so a JavaScript number cannot hold it exactly.
    #[error("integer {value} is beyond ±2^53 and would lose precision as a JavaScript number")]
    UnsafeInteger {
        /// The integer, in decimal.
        value: String,
    },
    /// A [`Date`](super::Date) is outside the range of JavaScript dates (±8.64e15 ms).
    #[error("date {millis} ms is outside the range of JavaScript dates")]
    DateOutOfRange {
        /// The milliseconds since the epoch.
        millis: String,
    },
    /// A map key is not a string, char, bool, number, unit variant or newtype of one.
    #[error("a map key must be a string, a char, a bool, a number or a unit variant")]
    KeyMustBeString,
    /// A message from a `Serialize` or `Deserialize` implementation (or serde's derive).
    #[error("{0}")]
    Message(String),
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }

    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        Error::InvalidType {
            found: unexp.to_string(),
            expected: exp.to_string(),
        }
    }
}
