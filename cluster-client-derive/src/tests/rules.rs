//! Every rule: its message, and one error per concern.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{ItemTrait, parse_quote};

use super::errors;
use crate::expand::expand;

/// `{ item } => "expected message",` pairs (a macro, so each case stays on one line).
macro_rules! rules {
    ($({ $($item:tt)* } => $expected:literal,)*) => {
        vec![$((parse_quote!($($item)*), $expected)),*]
    };
}

#[test]
fn errors_are_combined() {
    let item: ItemTrait = parse_quote! {
        trait Bad<T> {
            type Item;
            async fn a(self) -> Result<u8, E>;
            #[oneway]
            async fn b(&self, (x, y): (u8, u8)) -> u8;
            #[invoke(timeout_ms = 0, retries = 2)]
            async fn c(&self) -> u8;
            fn d(&self);
        }
    };
    let all = errors(quote!(nme = "x"), item);
    assert_eq!(all.len(), 10, "{all:#?}");
}

#[test]
fn each_rule_says_what_to_write() {
    let cases: Vec<(ItemTrait, &str)> = rules! {
        {trait X { async fn m(self) -> Result<(), E>; }} => "take `&self`: a method cannot consume",
        {trait X { async fn m(&mut self) -> Result<(), E>; }} => "not `&mut self`",
        {trait X { async fn m(&'a self) -> Result<(), E>; }} => "remove the lifetime: write `&self`",
        {trait X { async fn m(self: Box<Self>) -> Result<(), E>; }} => "write `&self`",
        {trait X { async fn m() -> Result<(), E>; }} => "add `&self`",
        {trait X { async fn m<T>(&self, t: T) -> Result<(), E>; }} => "generic methods are not supported",
        {trait X { async fn m<'a>(&self) -> Result<(), E>; }} => "remove the lifetime parameters",
        {trait X { async fn m(&self) -> Result<(), E> where E: Clone; }} => "remove the where clause",
        {trait X { async fn m(&self) -> Result<(), E> {} }} => "remove the default body",
        {trait X { async fn m(&self, (a, b): (u8, u32)) -> Result<(), E>; }} => "patterns aren't allowed",
        {trait X { async fn m(&self, _: u8) -> Result<(), E>; }} => "name the argument",
        {trait X { async fn m(&self, s: &str) -> Result<(), E>; }} => "travel by value",
        {trait X { async fn m(&self, s: Cow<'a, str>) -> Result<(), E>; }} => "remove the lifetime `'a`",
        {trait X { async fn m(&self, s: impl Display) -> Result<(), E>; }} => "`impl Trait` is not a concrete type",
        {trait X { async fn m(&self) -> Result<Self, E>; }} => "`Self` is the real client",
        {trait X { async fn m(&self) -> u8; }} => "returns `Result<T, E>`",
        {trait X { async fn m(&self) -> io::Result<u8>; }} => "one-parameter alias",
        {trait X { #[invoke] fn m(&self) -> Result<(), E>; }} => "make it `async fn`",
        {trait X { fn m(&self) -> impl Future<Output = u8>; }} => "make it `async fn m`",
        {trait X { #[invoke] fn m(&self) -> impl Future<Output = Result<(), E>> + Send; }} => "write `async fn m(..) -> T`",
        {trait X { fn m(&self) -> Subscription<u8>; }} => "tag this method `#[subscribe]`",
        {trait X { #[oneway] async fn m(&self) -> u8; }} => "a `#[oneway]` method returns nothing",
        {trait X { #[oneway] fn m(&self); }} => "make it `async fn`: a `#[oneway]`",
        {trait X { #[publish] async fn m(&self, x: u8) -> u8; }} => "a `#[publish]` method returns nothing",
        {trait X { #[subscribe] async fn m(&self) -> Subscription<u8>; }} => "remove `async`",
        {trait X { #[subscribe] fn m(&self) -> Vec<u8>; }} => "returns `Subscription<T>`",
        {trait X { #[close] async fn m(&self, x: u8); }} => "takes only `&self`",
        {trait X { #[close] async fn m(&self) -> u8; }} => "a `#[close]` method returns nothing",
        {trait X { #[close] async fn m(&self); #[close] async fn n(&self); }} => "only one method can be `#[close]`",
        {trait X { #[invoke] #[invoke] async fn m(&self) -> Result<(), E>; }} => "duplicate `#[invoke]`",
        {trait X { #[invoke] #[oneway] async fn m(&self); }} => "a method has one kind",
        {trait X { #[invoke(timeout = 5)] async fn m(&self) -> Result<(), E>; }} => "unknown argument `timeout`, expected one of: `name`, `timeout_ms`, `idempotent`",
        {trait X { #[oneway(idempotent)] async fn m(&self); }} => "unknown argument `idempotent`, expected one of: `name`",
        {trait X { #[invoke(idempotent, idempotent)] async fn m(&self) -> Result<(), E>; }} => "duplicate argument `idempotent`",
        {trait X { #[invoke(idempotent = true)] async fn m(&self) -> Result<(), E>; }} => "`idempotent` is a flag",
        {trait X { #[invoke(timeout_ms = "5s")] async fn m(&self) -> Result<(), E>; }} => "takes an integer literal",
        {trait X { #[invoke(timeout_ms = 0)] async fn m(&self) -> Result<(), E>; }} => "at least 1",
        {trait X { #[invoke(timeout_ms = 2_147_483_648)] async fn m(&self) -> Result<(), E>; }} => "at most 2_147_483_647",
        {trait X { #[invoke = 5] async fn m(&self) -> Result<(), E>; }} => "not `#[invoke = ..]`",
        {trait X { #[subscribe(broadcast = "no")] fn m(&self) -> Subscription<u8>; }} => "`broadcast` takes `true`",
        {trait X { async fn create(&self) -> Result<(), E>; }} => "`create` clashes with the generated `XClient::create`",
        {trait X { async fn is_leader(&self) -> Result<bool, E>; }} => "`is_leader` clashes",
        {trait X { async fn epoch(&self) -> Result<u64, E>; }} => "`epoch` clashes",
        {trait X { #[oneway] async fn close(&self); }} => "tag it `#[close]`",
        {trait X { type Item; }} => "associated types are not supported",
        {trait X { const N: u8; }} => "associated consts are not supported",
        {trait X<T> {}} => "cannot be generic",
        {trait X: Send {}} => "remove the supertraits",
        {unsafe trait X {}} => "remove `unsafe`",
        {trait X { async unsafe fn m(&self) -> Result<(), E>; }} => "remove `unsafe`",
        {trait X { async fn m( &self, a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, i: u8, j: u8, k: u8, l: u8, m: u8, ) -> Result<(), E>; }} => "at most 12 arguments",
    };
    for (item, expected) in cases {
        let tokens = item.to_token_stream().to_string();
        let all = errors(TokenStream::new(), item);
        assert_eq!(
            all.len(),
            1,
            "`{tokens}`: one concern, one error; got {all:#?}"
        );
        assert!(
            all.iter().any(|message| message.contains(expected)),
            "`{tokens}`: expected an error containing `{expected}`, got {all:#?}"
        );
    }
}

#[test]
fn trait_options_are_checked() {
    let empty: ItemTrait = parse_quote!(
        trait X {}
    );
    for (args, expected) in [
        (
            quote!(nme = "x"),
            "unknown argument `nme`, expected one of: `name`, `crate`, `rename_all`",
        ),
        (quote!(name = "a", name = "b"), "duplicate argument `name`"),
        (quote!(name = ""), "must not be empty"),
        (quote!(name = x), "`name` takes a string literal"),
        (quote!(crate = "not a path"), "`crate` takes the path"),
        (quote!(crate = cluster_client), "`crate` takes the path"),
    ] {
        let all = errors(args.clone(), empty.clone());
        assert!(
            all.iter().any(|m| m.contains(expected)),
            "`{args}`: got {all:#?}"
        );
    }
}

#[test]
fn not_a_trait() {
    let result = expand(
        TokenStream::new(),
        quote!(
            struct S;
        ),
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("goes on a trait"), "{message}");
}
