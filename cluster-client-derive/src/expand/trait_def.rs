//! The trait, re-emitted: `async fn`s become `fn .. -> impl Future<Output = T> + Send`, tags stripped.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;

impl Generator<'_> {
    /// The trait as users implement it on their real client.
    pub(super) fn trait_def(&self) -> TokenStream {
        let model = self.model;
        let (attrs, vis, ident) = (&model.attrs, &model.vis, &model.ident);
        let methods = model.methods.iter().map(|method| {
            let attrs = &method.attrs;
            let signature = method.signature();
            quote!(#(#attrs)* #signature;)
        });
        quote! {
            #(#attrs)*
            #vis trait #ident {
                #(#methods)*
            }
        }
    }
}
