//! `{Trait}Proxy`: the follower-side stub; every method is one call into `__private`.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::attr::Kind;
use crate::model::Method;

impl Generator<'_> {
    pub(super) fn proxy_struct(&self) -> TokenStream {
        let (vis, proxy, private) = (&self.model.vis, &self.proxy, &self.private);
        let doc = format!(
            "The follower-side stub of [`{}`]: forwards every call to wherever the leader is. \
             [`{}`] holds one.",
            self.trait_ident, self.client
        );
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #proxy {
                handle: #private::Handle,
            }
        }
    }

    pub(super) fn proxy_impl(&self) -> TokenStream {
        let (trait_ident, proxy) = (self.trait_ident, &self.proxy);
        let methods = self.model.methods.iter().map(|method| {
            let cfgs = method.cfgs();
            let signature = method.signature();
            let body = self.proxy_body(method);
            quote!(#(#cfgs)* #signature { #body })
        });
        quote! {
            impl #trait_ident for #proxy {
                #(#methods)*
            }
        }
    }

    fn proxy_body(&self, method: &Method) -> TokenStream {
        let private = &self.private;
        let name = &method.name;
        let args = method.arg_idents();
        let args = quote!((#(#args,)*));
        match method.kind {
            Kind::Invoke => quote!(#private::invoke(&self.handle, #name, #args)),
            Kind::Oneway => quote!(#private::oneway(&self.handle, #name, #args)),
            Kind::Publish => quote!(#private::publish(&self.handle, #name, #args)),
            Kind::Subscribe => quote!(#private::subscribe(&self.handle, #name, #args)),
            Kind::Close => quote!(#private::close(&self.handle)),
        }
    }
}
