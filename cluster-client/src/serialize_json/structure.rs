//! The structure part, read one token at a time.

use super::dictionary::{Dictionary, Entry};
use super::error::Error;

/// The four kinds of container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// `@`: an array.
    Array,
    /// `$`: a plain object, keys and values alternating.
    Object,
    /// `*`: a Buffer, one integer entry per byte.
    Buffer,
    /// `#`: an `Error`, written as an object (`message`, `stack`, then its own properties).
    JsError,
}

impl Container {
    /// The token that opens it.
    pub(crate) fn opener(self) -> char {
        match self {
            Container::Array => '@',
            Container::Object => '$',
            Container::Buffer => '*',
            Container::JsError => '#',
        }
    }
}

/// A complete value that is a single token: a fixed token or a dictionary reference.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Atom<'de> {
    /// `-1` (true) or `-2` (false).
    Bool(bool),
    /// `-3`.
    Null,
    /// `-4`.
    EmptyString,
    /// `-5`.
    Undefined,
    /// A base-36 index into the dictionary.
    Entry(Entry<'de>),
}

/// One token of the structure.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Token<'de> {
    Open(Container),
    Close,
    Separator,
    Atom(Atom<'de>),
}

/// Whether `byte` is one of the single-byte tokens, which end a multi-byte one.
fn is_punctuation(byte: u8) -> bool {
    matches!(byte, b'@' | b'$' | b'*' | b'#' | b']' | b'|')
}

/// A cursor over the structure.
pub(crate) struct Reader<'de> {
    text: &'de str,
    base: usize,
    pos: usize,
}

impl<'de> Reader<'de> {
    /// A reader of `text`, which starts at byte `base` of the input.
    pub(crate) fn new(text: &'de str, base: usize) -> Self {
        Reader { text, base, pos: 0 }
    }

    /// Offset in the input of the next token.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The first character of the next token, for error messages.
    pub(crate) fn current_char(&self) -> char {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
            .unwrap_or('\u{fffd}')
    }

    /// The next token and its length in bytes, without consuming it; `None` at the end.
    pub(crate) fn peek(
        &self,
        dict: &Dictionary<'de>,
    ) -> Result<Option<(Token<'de>, usize)>, Error> {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        let Some(&first) = rest.first() else {
            return Ok(None);
        };
        let token = match first {
            b'@' => Token::Open(Container::Array),
            b'$' => Token::Open(Container::Object),
            b'*' => Token::Open(Container::Buffer),
            b'#' => Token::Open(Container::JsError),
            b']' => Token::Close,
            b'|' => Token::Separator,
            _ => {
                let len = rest
                    .iter()
                    .position(|&b| is_punctuation(b))
                    .unwrap_or(rest.len());
                let text = self.text.get(self.pos..self.pos + len).unwrap_or_default();
                let atom = resolve(text, dict, self.offset())?;
                return Ok(Some((Token::Atom(atom), len)));
            }
        };
        Ok(Some((token, 1)))
    }

    /// Consumes `len` bytes (a token `peek` returned).
    pub(crate) fn advance(&mut self, len: usize) {
        self.pos += len;
    }
}

/// The value a multi-byte token stands for.
fn resolve<'de>(text: &str, dict: &Dictionary<'de>, offset: usize) -> Result<Atom<'de>, Error> {
    match text {
        "-1" => return Ok(Atom::Bool(true)),
        "-2" => return Ok(Atom::Bool(false)),
        "-3" => return Ok(Atom::Null),
        "-4" => return Ok(Atom::EmptyString),
        "-5" => return Ok(Atom::Undefined),
        _ => {}
    }
    let index =
        super::number::parse_base36_index(text).ok_or(Error::InvalidReference { offset })?;
    dict.get(index)
        .map(Atom::Entry)
        .ok_or(Error::DanglingIndex {
            offset,
            index,
            len: dict.len(),
        })
}
