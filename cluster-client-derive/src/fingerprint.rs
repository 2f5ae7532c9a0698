//! The schema fingerprint: FNV-1a (64-bit) of a canonical text of the trait, computed at macro time.
//!
//! The text lists, in declaration order, each method's wire name, kind, options, and the token text of
//! its argument and result types (argument names and docs are left out: they do not change the wire).
//! Tokens are printed by this module, one space between tokens, so the text does not depend on the
//! compiler's own pretty-printing. A `#[cfg]`'d method counts whether or not it is compiled in.

use std::fmt::Write as _;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;

use crate::model::{Model, Output};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The fingerprint of `model`.
pub(crate) fn fingerprint(model: &Model) -> u64 {
    fnv1a(canonical(model).as_bytes())
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The canonical text: a version line, then one line per method:
/// `name kind [timeout_ms=N] [idempotent] [broadcast=false] (A, B) -> R`.
pub(crate) fn canonical(model: &Model) -> String {
    let mut text = String::from("cluster-client schema 1\n");
    for method in &model.methods {
        text.push_str(&method.name);
        text.push(' ');
        text.push_str(method.kind.as_str());
        if let Some(ms) = method.timeout_ms {
            let _ = write!(text, " timeout_ms={ms}");
        }
        if method.idempotent {
            text.push_str(" idempotent");
        }
        if !method.broadcast {
            text.push_str(" broadcast=false");
        }
        text.push_str(" (");
        for (index, arg) in method.args.iter().enumerate() {
            if index > 0 {
                text.push_str(", ");
            }
            print_tokens(arg.ty.to_token_stream(), &mut text);
        }
        text.push_str(") -> ");
        match &method.output {
            Output::Unit => text.push_str("()"),
            Output::Result { ok, err, .. } => {
                text.push_str("Result<");
                print_tokens(ok.to_token_stream(), &mut text);
                text.push_str(", ");
                print_tokens(err.to_token_stream(), &mut text);
                text.push('>');
            }
            Output::Subscription { item, err, .. } => {
                text.push_str("Subscription<");
                print_tokens(item.to_token_stream(), &mut text);
                text.push('>');
                if let Some(err) = err {
                    text.push_str(" or ");
                    print_tokens(err.to_token_stream(), &mut text);
                }
            }
        }
        text.push('\n');
    }
    text
}

/// Tokens separated by one space (a lifetime's `'` is glued to its name). Spacing as written is
/// ignored: `Vec<Vec<u8>>` and `Vec<Vec<u8> >` print the same.
fn print_tokens(tokens: TokenStream, out: &mut String) {
    let mut glued = true;
    for token in tokens {
        if !glued {
            out.push(' ');
        }
        glued = false;
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                print_tokens(group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Punct(punct) => {
                out.push(punct.as_char());
                glued = punct.as_char() == '\'';
            }
            TokenTree::Ident(ident) => {
                let _ = write!(out, "{ident}");
            }
            TokenTree::Literal(literal) => {
                let _ = write!(out, "{literal}");
            }
        }
    }
}
