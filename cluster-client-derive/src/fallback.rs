//! On error: the user's trait, tags stripped, beside the `compile_error!`s, so code that names the
//! trait still compiles and the user sees our messages rather than a cascade.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemTrait, Pat, PatWild, Token, TraitItem};

use crate::attr;

/// The input as it can best be emitted, then every error.
pub(crate) fn expand(input: TokenStream, error: syn::Error) -> TokenStream {
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Trait(mut item)) => {
            strip(&mut item);
            item.into_token_stream()
        }
        _ => input,
    };
    let errors = error.into_compile_error();
    quote!(#item #errors)
}

/// Removes the method tags, and the argument patterns rustc refuses in a method without a body (they
/// were reported already).
fn strip(item: &mut ItemTrait) {
    for trait_item in &mut item.items {
        let TraitItem::Fn(method) = trait_item else {
            continue;
        };
        method.attrs.retain(|attr| !attr::is_tag(attr));
        if method.default.is_some() {
            continue;
        }
        for input in &mut method.sig.inputs {
            let FnArg::Typed(typed) = input else {
                continue;
            };
            match &mut *typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    pat.mutability = None;
                }
                Pat::Wild(_) => {}
                pat => {
                    *pat = Pat::Wild(PatWild {
                        attrs: Vec::new(),
                        underscore_token: Token![_](pat.span()),
                    });
                }
            }
        }
    }
}
