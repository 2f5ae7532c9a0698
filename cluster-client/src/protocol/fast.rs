//! Hand-written writing and reading of the connection objects on the hot path (`invoke`,
//! `invoke_result`, `subscribe_result`, heartbeats), byte for byte what serde_json writes.
//!
//! Reading accepts only that exact layout (the field order both this crate and the original write);
//! anything else, or anything unusual such as a `\u` escape, returns `None` and goes to the full
//! serde parser, so the fast path never changes what a packet means.

use bytes::{BufMut, BytesMut};

use super::ConnObject;
use super::conn::{
    Heartbeat, HeartbeatRes, Invoke, InvokeResult, SubscribeResult, SubscribeResultRes,
};

/// Appends the JSON of `conn` if it is one of the hot shapes; `false` (nothing written) otherwise.
pub(super) fn write(conn: &ConnObject, out: &mut BytesMut) -> bool {
    match conn {
        ConnObject::Invoke(Invoke {
            method,
            arg_length,
            oneway,
        }) => {
            out.put_slice(INVOKE_PREFIX);
            put_str(out, method);
            out.put_slice(br#","argLength":"#);
            out.put_slice(itoa(*arg_length).as_ref());
            out.put_slice(if *oneway {
                br#","oneway":true}"#
            } else {
                br#","oneway":false}"#
            });
        }
        ConnObject::InvokeResult(InvokeResult {
            success,
            fault: None,
        }) => out.put_slice(if *success { INVOKE_OK } else { INVOKE_ERR }),
        ConnObject::SubscribeResult(SubscribeResult {
            key,
            method: Some(method),
            end: None,
            typed: false,
            request: None,
        }) => put_push(out, key, method),
        ConnObject::Heartbeat(Heartbeat {}) => out.put_slice(HEARTBEAT),
        ConnObject::HeartbeatRes(HeartbeatRes {}) => out.put_slice(HEARTBEAT_RES),
        ConnObject::SubscribeResultRes(SubscribeResultRes {}) => {
            out.put_slice(SUBSCRIBE_RESULT_RES)
        }
        _ => return false,
    }
    true
}

/// The connection object of every item push for (`method`, `key`), as [`write`] writes it: a
/// reader that finds this text knows the push without parsing it.
pub(crate) fn push_text(key: &str, method: &str) -> Box<[u8]> {
    let mut out = BytesMut::with_capacity(48 + key.len() + method.len());
    put_push(&mut out, key, method);
    out.as_ref().into()
}

fn put_push(out: &mut BytesMut, key: &str, method: &str) {
    out.put_slice(br#"{"type":"subscribe_result","key":"#);
    put_str(out, key);
    out.put_slice(br#","method":"#);
    put_str(out, method);
    out.put_u8(b'}');
}

/// Reads one of the hot shapes, or `None` to leave the text to serde.
pub(super) fn read(text: &[u8]) -> Option<ConnObject> {
    match text {
        INVOKE_OK => {
            return Some(ConnObject::InvokeResult(InvokeResult {
                success: true,
                fault: None,
            }));
        }
        INVOKE_ERR => {
            return Some(ConnObject::InvokeResult(InvokeResult {
                success: false,
                fault: None,
            }));
        }
        HEARTBEAT => return Some(ConnObject::Heartbeat(Heartbeat {})),
        HEARTBEAT_RES => return Some(ConnObject::HeartbeatRes(HeartbeatRes {})),
        SUBSCRIBE_RESULT_RES => return Some(ConnObject::SubscribeResultRes(SubscribeResultRes {})),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix(INVOKE_PREFIX) {
        let (method, rest) = take_str(rest)?;
        let (arg_length, oneway) = invoke_tail(rest)?;
        return Some(ConnObject::Invoke(Invoke {
            method,
            arg_length,
            oneway,
        }));
    }
    let rest = text.strip_prefix(br#"{"type":"subscribe_result","key":"#)?;
    let (key, rest) = take_str(rest)?;
    let rest = rest.strip_prefix(br#","method":"#)?;
    let (method, rest) = take_str(rest)?;
    (rest == b"}").then_some(ConnObject::SubscribeResult(SubscribeResult {
        key,
        method: Some(method),
        end: None,
        typed: false,
        request: None,
    }))
}

/// An `invoke` in the hot layout with a method name free of escapes: the name (borrowed from
/// `text`), the argument count and whether it is oneway. `None` for anything else ([`read`] and
/// serde then decide).
pub(crate) fn read_invoke(text: &[u8]) -> Option<(&str, u32, bool)> {
    let rest = text.strip_prefix(INVOKE_PREFIX)?;
    let (method, escaped, rest) = scan_str(rest)?;
    if escaped {
        return None;
    }
    let (arg_length, oneway) = invoke_tail(rest)?;
    Some((std::str::from_utf8(method).ok()?, arg_length, oneway))
}

/// What follows an invoke's method: `,"argLength":N,"oneway":B}`.
fn invoke_tail(rest: &[u8]) -> Option<(u32, bool)> {
    let rest = rest.strip_prefix(br#","argLength":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let arg_length = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let oneway = match &rest[digits..] {
        br#","oneway":true}"# => true,
        br#","oneway":false}"# => false,
        _ => return None,
    };
    Some((arg_length, oneway))
}

const INVOKE_PREFIX: &[u8] = br#"{"type":"invoke","method":"#;
const INVOKE_OK: &[u8] = br#"{"type":"invoke_result","success":true}"#;
const INVOKE_ERR: &[u8] = br#"{"type":"invoke_result","success":false}"#;
const HEARTBEAT: &[u8] = br#"{"type":"heartbeat"}"#;
const HEARTBEAT_RES: &[u8] = br#"{"type":"heartbeat_res"}"#;
const SUBSCRIBE_RESULT_RES: &[u8] = br#"{"type":"subscribe_result_res"}"#;

/// A u32 in decimal, on the stack.
fn itoa(mut n: u32) -> impl AsRef<[u8]> {
    struct Digits([u8; 10], usize);
    impl AsRef<[u8]> for Digits {
        fn as_ref(&self) -> &[u8] {
            &self.0[self.1..]
        }
    }
    let mut digits = Digits([0; 10], 10);
    loop {
        digits.1 -= 1;
        digits.0[digits.1] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return digits;
        }
    }
}

/// Writes a JSON string as serde_json does: `"` and `\` escaped, control characters as `\b \f \n
/// \r \t` or `\u00XX`, everything else (non-ASCII too) as it is.
fn put_str(out: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(escape);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

/// Finds the end of a JSON string: its text between the quotes, whether that has escapes, and the
/// text after it; `None` when unterminated or on raw control characters.
fn scan_str(text: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    let text = text.strip_prefix(b"\"")?;
    // The closing quote is the first one not escaped.
    let mut end = 0;
    let mut escaped = false;
    loop {
        match *text.get(end)? {
            b'"' => return Some((&text[..end], escaped, &text[end + 1..])),
            b'\\' => {
                escaped = true;
                end += 2;
            }
            0..=0x1f => return None,
            _ => end += 1,
        }
    }
}

/// Reads a JSON string and returns it with the text after it; `None` on `\u` escapes, raw control
/// characters or invalid UTF-8 (serde then decides). The string is allocated once, at its size.
fn take_str(text: &[u8]) -> Option<(String, &[u8])> {
    let (raw, escaped, rest) = scan_str(text)?;
    if !escaped {
        return Some((std::str::from_utf8(raw).ok()?.to_owned(), rest));
    }
    // The escaped text is never shorter than the string it stands for.
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(offset) = raw[i..].iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&raw[i..i + offset]);
        i += offset;
        out.push(match raw[i + 1] {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 0x08,
            b'f' => 0x0c,
            _ => return None,
        });
        i += 2;
    }
    out.extend_from_slice(&raw[i..]);
    Some((String::from_utf8(out).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn serde_text(conn: &ConnObject) -> Vec<u8> {
        serde_json::to_vec(conn).expect("serialises")
    }

    fn hot() -> impl Strategy<Value = ConnObject> {
        prop_oneof![
            (".*", any::<u32>(), any::<bool>()).prop_map(|(method, arg_length, oneway)| {
                ConnObject::Invoke(Invoke {
                    method,
                    arg_length,
                    oneway,
                })
            }),
            any::<bool>().prop_map(|success| ConnObject::InvokeResult(InvokeResult {
                success,
                fault: None
            })),
            (".*", ".*").prop_map(
                |(key, method)| ConnObject::SubscribeResult(SubscribeResult {
                    key,
                    method: Some(method),
                    end: None,
                    typed: false,
                    request: None,
                })
            ),
            Just(ConnObject::Heartbeat(Heartbeat {})),
            Just(ConnObject::HeartbeatRes(HeartbeatRes {})),
            Just(ConnObject::SubscribeResultRes(SubscribeResultRes {})),
        ]
    }

    proptest! {
        #[test]
        fn writes_exactly_what_serde_writes(conn in hot()) {
            let mut out = BytesMut::new();
            prop_assert!(write(&conn, &mut out));
            prop_assert_eq!(&out[..], &serde_text(&conn)[..]);
        }

        #[test]
        fn reads_back_what_it_writes(conn in hot()) {
            let mut out = BytesMut::new();
            write(&conn, &mut out);
            let read_back = read(&out);
            // `\u` escapes are left to serde; everything else is read here.
            if let Some(fast) = read_back {
                prop_assert_eq!(fast, conn);
            } else {
                prop_assert!(out.windows(2).any(|w| w == b"\\u"));
            }
        }

        #[test]
        fn never_disagrees_with_serde(text in proptest::collection::vec(any::<u8>(), 0..80), prefix in 0usize..4) {
            let prefixes: [&[u8]; 4] = [
                br#"{"type":"invoke","method":""#,
                br#"{"type":"subscribe_result","key":""#,
                br#"{"type":"invoke_result","success":"#,
                b"",
            ];
            let mut input = prefixes[prefix].to_vec();
            input.extend_from_slice(&text);
            if let Some(fast) = read(&input) {
                let slow: ConnObject = serde_json::from_slice(&input).expect("serde accepts what the fast path accepts");
                prop_assert_eq!(fast, slow);
            }
            if let Some((method, arg_length, oneway)) = read_invoke(&input) {
                let slow: ConnObject = serde_json::from_slice(&input).expect("serde accepts what read_invoke accepts");
                prop_assert_eq!(slow, ConnObject::Invoke(Invoke { method: method.to_owned(), arg_length, oneway }));
            }
        }
    }

    proptest! {
        #[test]
        fn push_text_is_the_push_as_serde_reads_it(key in ".*", method in ".*") {
            let text = push_text(&key, &method);
            let conn: ConnObject = serde_json::from_slice(&text).expect("serde reads it");
            prop_assert_eq!(conn, ConnObject::SubscribeResult(SubscribeResult { key, method: Some(method), end: None, typed: false, request: None }));
        }
    }

    proptest! {
        #[test]
        fn read_invoke_agrees_with_read(method in ".*", arg_length in any::<u32>(), oneway in any::<bool>()) {
            let conn = ConnObject::Invoke(Invoke { method: method.clone(), arg_length, oneway });
            let mut out = BytesMut::new();
            write(&conn, &mut out);
            match read_invoke(&out) {
                Some(parts) => prop_assert_eq!(parts, (method.as_str(), arg_length, oneway)),
                // Only a name with escapes is left to `read`.
                None => prop_assert!(method.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)),
            }
        }
    }

    #[test]
    fn other_shapes_go_to_serde() {
        let fault = ConnObject::InvokeResult(InvokeResult {
            success: false,
            fault: Some("x".into()),
        });
        assert!(!write(&fault, &mut BytesMut::new()));
        assert_eq!(
            read(br#"{"oneway":false,"type":"invoke","method":"m","argLength":1}"#),
            None
        );
        assert_eq!(
            read(br#"{"type":"invoke","method":"m","argLength":01,"oneway":false}"#),
            None
        );
        assert_eq!(
            read(br#"{"type":"invoke","method":"\u0041","argLength":1,"oneway":false}"#),
            None
        );
    }
}
