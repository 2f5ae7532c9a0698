//! The expansion: one small function per generated item, joined by `ToTokens`.

mod client;
mod schema;
mod serve;
mod trait_def;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::Ident;

use crate::model::Model;

/// Expands `#[cluster_client(args)] input`, or returns every error found.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let model = Model::parse(args, input)?;
    Ok(Generator::new(&model).into_token_stream())
}

/// The model and the names every generated item uses.
pub(crate) struct Generator<'a> {
    model: &'a Model,
    /// `::cluster_client::__private` (or `<crate option>::__private`).
    private: TokenStream,
    /// `::cluster_client` (or the `crate` option).
    krate: TokenStream,
    trait_ident: &'a Ident,
    client: Ident,
    serve: Ident,
    /// The type parameter of `Serve{Trait}<T>`: `T`, unless the trait itself is named `T`.
    real: Ident,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(model: &'a Model) -> Self {
        let krate = model.krate.to_token_stream();
        let real = if model.ident == "T" { "Real" } else { "T" };
        Generator {
            model,
            private: quote!(#krate::__private),
            krate,
            trait_ident: &model.ident,
            client: model.generated_ident("", "Client"),
            serve: model.generated_ident("Serve", ""),
            real: Ident::new(real, Span::call_site()),
        }
    }
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend([
            self.trait_def(),
            self.wire_assertions(),
            self.serve_struct(),
            self.serve_impl(),
            self.client_struct(),
            self.client_inherent(),
            self.client_impl(),
        ]);
    }
}
