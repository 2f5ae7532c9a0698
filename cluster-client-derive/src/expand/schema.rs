//! The schema constant and the compile-time serde assertions.

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::Generator;
use crate::fingerprint;
use crate::model::{Method, Output};

impl Generator<'_> {
    /// `pub const SCHEMA: &'static Schema`, an associated constant of `{Trait}Client`.
    pub(super) fn schema_const(&self) -> TokenStream {
        let private = &self.private;
        let name = &self.model.channel;
        let fingerprint = Literal::u64_suffixed(fingerprint::fingerprint(self.model));
        let specs = self
            .model
            .methods
            .iter()
            .map(|method| self.method_spec(method));
        let doc = format!(
            "The schema of [`{}`]: channel name, fingerprint and methods.",
            self.trait_ident
        );
        quote! {
            #[doc = #doc]
            pub const SCHEMA: &'static #private::Schema = &#private::Schema {
                name: #name,
                fingerprint: #fingerprint,
                methods: &[#(#specs),*],
            };
        }
    }

    fn method_spec(&self, method: &Method) -> TokenStream {
        let private = &self.private;
        let cfgs = method.cfgs();
        let name = &method.name;
        let kind = syn::Ident::new(method.kind.variant(), proc_macro2::Span::call_site());
        let timeout_ms = match method.timeout_ms {
            Some(ms) => {
                let ms = Literal::u32_suffixed(ms);
                quote!(::core::option::Option::Some(#ms))
            }
            None => quote!(::core::option::Option::None),
        };
        let (idempotent, broadcast, resubscribe) =
            (method.idempotent, method.broadcast, method.resubscribe);
        quote! {
            #(#cfgs)*
            #private::MethodSpec {
                name: #name,
                kind: #private::MethodKind::#kind,
                timeout_ms: #timeout_ms,
                idempotent: #idempotent,
                broadcast: #broadcast,
                resubscribe: #resubscribe,
            }
        }
    }

    /// One `const _: () = { assert_wire::<A>(); .. };` per method, each call spanned on the user's
    /// type so an unmet serde bound points there.
    pub(super) fn wire_assertions(&self) -> TokenStream {
        let items = self.model.methods.iter().filter_map(|method| {
            let mut checks: Vec<TokenStream> = method
                .args
                .iter()
                .map(|arg| self.assert("assert_wire", &arg.ty))
                .collect();
            match &method.output {
                Output::Unit => {}
                Output::Result { ok, err, .. } => {
                    checks.push(self.assert("assert_wire", ok));
                    checks.push(self.assert("assert_error", err));
                }
                Output::Subscription { item, err, .. } => {
                    checks.push(self.assert("assert_wire", item));
                    if let Some(err) = err {
                        checks.push(self.assert("assert_subscribe_error", err));
                    }
                }
            }
            let cfgs = method.cfgs();
            (!checks.is_empty()).then(|| quote!(#(#cfgs)* const _: () = { #(#checks)* };))
        });
        quote!(#(#items)*)
    }

    fn assert(&self, helper: &str, ty: &Type) -> TokenStream {
        let private = &self.private;
        let helper = syn::Ident::new(helper, ty.span());
        quote_spanned!(ty.span()=> #private::#helper::<#ty>();)
    }
}
