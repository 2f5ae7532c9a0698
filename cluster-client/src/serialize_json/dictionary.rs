//! The four dictionary parts of an input: split, checked entry by entry, and indexed.

use super::error::{Error, Section};
use super::escape;
use super::number;

/// One dictionary entry, still as it is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'de> {
    /// The part it is in.
    pub(crate) section: Section,
    /// Its position within that part.
    pub(crate) number: usize,
    /// Its position in the whole dictionary.
    pub(crate) index: usize,
    /// Its text, escapes and all.
    pub(crate) text: &'de str,
    /// Offset of its first byte in the input.
    pub(crate) offset: usize,
}

/// One part: its text and where each entry starts (entries are separated by one `|`).
///
/// The starts are the only allocation: one `usize` per entry, and every entry is at least one
/// byte of input plus its separator.
struct Part<'de> {
    section: Section,
    text: &'de str,
    base: usize,
    starts: Vec<usize>,
}

impl<'de> Part<'de> {
    fn parse(section: Section, text: &'de str, base: usize) -> Result<Self, Error> {
        let mut starts = Vec::new();
        if !text.is_empty() {
            let mut start = 0;
            for (number, entry) in text.split('|').enumerate() {
                check_entry(section, number, entry, base + start)?;
                starts.push(start);
                start += entry.len() + 1;
            }
        }
        Ok(Part {
            section,
            text,
            base,
            starts,
        })
    }

    fn get(&self, number: usize, first_index: usize) -> Option<Entry<'de>> {
        let start = *self.starts.get(number)?;
        let end = match self.starts.get(number + 1) {
            Some(next) => next.saturating_sub(1),
            None => self.text.len(),
        };
        Some(Entry {
            section: self.section,
            number,
            index: first_index + number,
            text: self.text.get(start..end)?,
            offset: self.base + start,
        })
    }
}

/// Refuses an entry Node's encoder could not have written.
fn check_entry(section: Section, number: usize, entry: &str, offset: usize) -> Result<(), Error> {
    let malformed = |reason| Error::MalformedDictionary {
        section,
        entry: number,
        offset,
        reason,
    };
    if entry.is_empty() {
        return Err(malformed("empty entry"));
    }
    match section {
        Section::Strings => escape::validate(entry).map_err(|at| Error::InvalidEscape {
            entry: number,
            offset: offset + at,
        }),
        Section::Integers | Section::Dates if !number::is_base36(entry) => {
            Err(malformed("not a base-36 integer"))
        }
        Section::Floats if number::parse_js_float(entry).is_none() => {
            Err(malformed("not a JavaScript number"))
        }
        _ => Ok(()),
    }
}

/// The dictionary: one index space over the four parts, in wire order.
pub(crate) struct Dictionary<'de> {
    parts: [Part<'de>; 4],
    len: usize,
}

impl<'de> Dictionary<'de> {
    /// Splits `input` into its parts; returns the dictionary, the structure text and its offset.
    pub(crate) fn parse(input: &'de str) -> Result<(Self, &'de str, usize), Error> {
        let mut carets = input.match_indices('^').map(|(at, _)| at);
        let mut bounds = [(0usize, 0usize); 4];
        let mut start = 0;
        for (found, bound) in bounds.iter_mut().enumerate() {
            let end = carets
                .next()
                .ok_or(Error::MissingSection { found: found + 1 })?;
            *bound = (start, end);
            start = end + 1;
        }
        if let Some(offset) = carets.next() {
            return Err(Error::TrailingInput { offset });
        }
        let part = |section: Section| {
            let (from, to) = bounds[section.position()];
            Part::parse(section, input.get(from..to).unwrap_or_default(), from)
        };
        let parts = [
            part(Section::Strings)?,
            part(Section::Integers)?,
            part(Section::Floats)?,
            part(Section::Dates)?,
        ];
        let len = parts.iter().map(|p| p.starts.len()).sum();
        let structure = input.get(start..).unwrap_or_default();
        Ok((Dictionary { parts, len }, structure, start))
    }

    /// How many entries the four parts hold together.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entry with a global index.
    pub(crate) fn get(&self, index: u64) -> Option<Entry<'de>> {
        let index = usize::try_from(index).ok()?;
        let mut first_index = 0;
        for part in &self.parts {
            match index.checked_sub(first_index) {
                Some(number) if number < part.starts.len() => {
                    return part.get(number, first_index);
                }
                _ => first_index += part.starts.len(),
            }
        }
        None
    }
}
