//! The escaping of string entries.
//!
//! Only five characters are rewritten: the two separators (`|`, `^`) so that an entry never
//! splits, the space (as `+`), and `+` and `%` so that the rewriting can be undone. Everything
//! else, control characters and structure characters included, is stored as it is.

use std::borrow::Cow;

/// Appends `s` to `out`, escaped.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(pos) = rest.find([' ', '+', '|', '^', '%']) {
        let (plain, tail) = rest.split_at(pos);
        out.push_str(plain);
        let mut chars = tail.chars();
        out.push_str(match chars.next() {
            Some(' ') => "+",
            Some('+') => "%2B",
            Some('|') => "%7C",
            Some('^') => "%5E",
            _ => "%25",
        });
        rest = chars.as_str();
    }
    out.push_str(rest);
}

/// The character an escape sequence (the three bytes starting at a `%`) stands for.
fn escaped_char(sequence: &[u8]) -> Option<char> {
    match sequence {
        b"%2B" => Some('+'),
        b"%7C" => Some('|'),
        b"%5E" => Some('^'),
        b"%25" => Some('%'),
        _ => None,
    }
}

/// Undoes the escaping, appending to `out` when given one; only checks the entry otherwise.
///
/// Returns whether the entry holds any escape at all, or the offset within `raw` of a `%` that
/// does not start a known escape.
fn walk(raw: &str, mut out: Option<&mut String>) -> Result<bool, usize> {
    let bytes = raw.as_bytes();
    let mut escaped = false;
    let mut plain_from = 0;
    let mut pos = 0;
    while let Some(&byte) = bytes.get(pos) {
        let (ch, len) = match byte {
            b'+' => (' ', 1),
            b'%' => {
                let sequence = bytes.get(pos..pos + 3).ok_or(pos)?;
                (escaped_char(sequence).ok_or(pos)?, 3)
            }
            _ => {
                pos += 1;
                continue;
            }
        };
        if let Some(out) = out.as_deref_mut() {
            out.push_str(raw.get(plain_from..pos).unwrap_or_default());
            out.push(ch);
        }
        escaped = true;
        pos += len;
        plain_from = pos;
    }
    if let Some(out) = out {
        out.push_str(raw.get(plain_from..).unwrap_or_default());
    }
    Ok(escaped)
}

/// Checks a string entry; `Err` holds the offset within `raw` of a bad escape.
pub(crate) fn validate(raw: &str) -> Result<(), usize> {
    walk(raw, None).map(|_| ())
}

/// The text a string entry stands for, borrowed when it holds no escape.
pub(crate) fn unescape(raw: &str) -> Result<Cow<'_, str>, usize> {
    if !walk(raw, None)? {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    walk(raw, Some(&mut out))?;
    Ok(Cow::Owned(out))
}
