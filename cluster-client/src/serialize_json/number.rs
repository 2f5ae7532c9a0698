//! Numbers as the Node side writes and reads them.
//!
//! JavaScript has one number type, so the encoder decides per value: an integral value up to
//! ±2^53 goes to the integer part in upper-case base 36, anything else to the float part in the
//! shortest decimal form that JavaScript prints (Node also writes larger integral values to the
//! integer part, where they lose precision; the float part keeps them exact). The decoding
//! reproduces V8 to the bit, including its approximations for the integral values beyond 2^53 that
//! Node writes, so that the numbers decoded match what Node would read.

use super::error::Section;

/// The largest magnitude of an integer the encoder accepts, 2^53: up to it every integer is a
/// JavaScript number exactly; beyond it JavaScript would round some of them.
pub(crate) const MAX_EXACT: u128 = 1 << 53;

/// Digits of base 36, upper case as the Node encoder writes them.
const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Appends `magnitude` in upper-case base 36, with a leading `-` when `negative`.
pub(crate) fn push_base36(out: &mut String, negative: bool, mut magnitude: u128) {
    // 36^25 > 2^128, so 25 digits always suffice.
    let mut buf = [b'0'; 25];
    let mut start = buf.len();
    loop {
        start -= 1;
        if let Some(slot) = buf.get_mut(start) {
            *slot = DIGITS[(magnitude % 36) as usize];
        }
        magnitude /= 36;
        if magnitude == 0 || start == 0 {
            break;
        }
    }
    if negative {
        out.push('-');
    }
    for &digit in buf.get(start..).unwrap_or_default() {
        out.push(char::from(digit));
    }
}

/// The binary exponent V8's `Double::Exponent()` reports: `x == significand * 2^exponent` with a
/// 53-bit significand.
fn v8_exponent(x: f64) -> i32 {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 { -1074 } else { biased - 1075 }
}

/// Appends a finite integral `value` the way `value.toString(36).toUpperCase()` does in V8.
///
/// Below 2^53 this is the exact base-36 form. Above, V8 divides by 36 in floating point until the
/// quotient fits 53 bits, writes a `0` for each division, and then digits of the (by then
/// approximate) quotient: the digits are not the exact value of the double.
pub(crate) fn push_integral_f64(out: &mut String, value: f64) {
    let negative = value < 0.0;
    let mut integer = value.abs().floor();
    let mut zeros = 0usize;
    while v8_exponent(integer / 36.0) > 0 {
        integer /= 36.0;
        zeros += 1;
    }
    let mut digits = Vec::new();
    loop {
        let remainder = integer % 36.0;
        // As V8's `static_cast<int>`: the remainder is in [0, 36), possibly not integral.
        digits.push(DIGITS[(remainder as usize) % 36]);
        integer = (integer - remainder) / 36.0;
        if integer <= 0.0 || digits.len() > 1100 {
            break;
        }
    }
    if negative {
        out.push('-');
    }
    out.extend(digits.iter().rev().map(|&digit| char::from(digit)));
    out.extend(std::iter::repeat_n('0', zeros));
}

/// The value of one base-36 digit, either case (as `parseInt` accepts).
fn digit_value(byte: u8) -> Option<u32> {
    match byte {
        b'0'..=b'9' => Some(u32::from(byte - b'0')),
        b'A'..=b'Z' => Some(u32::from(byte - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(byte - b'a') + 10),
        _ => None,
    }
}

/// Whether `text` is an optional `-` and at least one base-36 digit.
pub(crate) fn is_base36(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The exact value of a base-36 integer, or `None` when it is malformed or beyond `i128`.
pub(crate) fn parse_base36_exact(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut acc: i128 = 0;
    for byte in digits.bytes() {
        acc = acc
            .checked_mul(36)?
            .checked_add(i128::from(digit_value(byte)?))?;
    }
    Some(if negative { -acc } else { acc })
}

/// The value of an unsigned base-36 index, or `None` when it is malformed or beyond `u64`.
pub(crate) fn parse_base36_index(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut acc: u64 = 0;
    for byte in text.bytes() {
        acc = acc
            .checked_mul(36)?
            .checked_add(u64::from(digit_value(byte)?))?;
    }
    Some(acc)
}

/// The number `parseInt(text, 36)` gives in V8, for a well-formed base-36 integer.
///
/// V8 reads five digits at a time into a 32-bit part and folds each part into a double; beyond
/// 2^53 the rounding of each fold shows (for example `1e300` written by V8 reads back as
/// `1.0000000000000006e300`, and `Number.MAX_VALUE` as `Infinity`).
pub(crate) fn parse_base36_js(text: &str) -> f64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut result = 0.0f64;
    for chunk in digits.as_bytes().chunks(5) {
        let mut part: u32 = 0;
        let mut multiplier: u32 = 1;
        for &byte in chunk {
            part = part * 36 + digit_value(byte).unwrap_or(0);
            multiplier *= 36;
        }
        result = result * f64::from(multiplier) + f64::from(part);
    }
    if negative { -result } else { result }
}

/// Whether `text` is a plain decimal literal: `-`? digits, `.`, digits, exponent.
fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let count_digits = |from: usize| {
        bytes.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut pos = usize::from(bytes.first() == Some(&b'-'));
    let int_digits = count_digits(pos);
    pos += int_digits;
    let mut frac_digits = 0;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        frac_digits = count_digits(pos);
        pos += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(bytes.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        if matches!(bytes.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        let exp_digits = count_digits(pos);
        if exp_digits == 0 {
            return false;
        }
        pos += exp_digits;
    }
    pos == bytes.len()
}

/// The value of a float entry: `NaN`, `Infinity`, `-Infinity` or a decimal literal.
///
/// Stricter than JavaScript's `parseFloat`, which ignores whatever follows a number.
pub(crate) fn parse_js_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if is_decimal_literal(text) => text.parse().ok(),
        _ => None,
    }
}

/// `value` as JavaScript's `Number.prototype.toString()` prints it.
///
/// The digits are the shortest that read back to the same double (Rust's `{:e}` finds them, as
/// V8 does); the layout follows ECMAScript's Number::toString: plain up to 21 integer digits,
/// `0.000001` down to six leading zeros, exponent form with an explicit sign otherwise.
pub(crate) fn js_number_to_string(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let scientific = format!("{:e}", value.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return value.to_string();
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return value.to_string();
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // value == 0.digits * 10^n
    let n = exponent + 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if value < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at_checked(n as usize).unwrap_or((&digits, ""));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at_checked(1).unwrap_or((&digits, ""));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let exponent = n - 1;
        out.push('e');
        out.push(if exponent >= 0 { '+' } else { '-' });
        out.push_str(&exponent.abs().to_string());
    }
    out
}

/// The `f32` nearest to a number or date entry (rounded once).
pub(crate) fn entry_to_f32(section: Section, text: &str) -> f32 {
    match section {
        Section::Floats => match parse_js_float(text) {
            Some(value) if value.is_finite() => text.parse().unwrap_or(value as f32),
            Some(value) => value as f32,
            None => f32::NAN,
        },
        _ => match parse_base36_exact(text) {
            Some(n) => n as f32,
            None => parse_base36_js(text) as f32,
        },
    }
}

/// The double a JavaScript receiver sees for an `f32`: the `f32`'s shortest decimal form read as
/// a double (so `0.1f32` travels as `0.1`, as `serde_json` writes it).
pub(crate) fn widen_f32(value: f32) -> f64 {
    if !value.is_finite() {
        return f64::from(value);
    }
    value.to_string().parse().unwrap_or(f64::from(value))
}
