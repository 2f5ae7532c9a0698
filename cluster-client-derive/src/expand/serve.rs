//! `Serve{Trait}<T>`: the leader-side dispatch, implementing the runtime's `Service` with one `match`
//! on the method name per entry point.

use proc_macro2::TokenStream;
use quote::quote;

use super::Generator;
use crate::attr::Kind;
use crate::model::Method;

impl Generator<'_> {
    pub(super) fn serve_struct(&self) -> TokenStream {
        let (vis, serve, real) = (&self.model.vis, &self.serve, &self.real);
        let doc = format!(
            "The leader-side dispatch of [`{}`]: serves a real client to the cluster. Built by \
             [`{}::create`] from the factory's value.",
            self.trait_ident, self.client
        );
        quote! {
            #[doc = #doc]
            #[derive(::core::fmt::Debug)]
            #vis struct #serve<#real>(#[doc = "The real client."] pub #real);
        }
    }

    pub(super) fn serve_impl(&self) -> TokenStream {
        let (private, serve, real, trait_ident, client) = (
            &self.private,
            &self.serve,
            &self.real,
            self.trait_ident,
            &self.client,
        );
        let (call, subscribe, close) = (
            self.serve_call(),
            self.serve_subscribe(),
            self.serve_close(),
        );
        quote! {
            #[allow(deprecated)]
            impl<#real> #private::Service for #serve<#real>
            where
                #real: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                fn schema(&self) -> &'static #private::Schema {
                    #client::SCHEMA
                }
                #call
                #subscribe
                #close
            }
        }
    }

    /// `<T as Trait>::method(&self.0, a, b)`.
    fn real_call(&self, method: &Method) -> TokenStream {
        let (real, trait_ident, ident) = (&self.real, self.trait_ident, &method.ident);
        let args = method.arg_idents();
        quote!(<#real as #trait_ident>::#ident(&self.0, #(#args),*))
    }

    fn serve_call(&self) -> TokenStream {
        let private = &self.private;
        let arms: Vec<TokenStream> = self
            .model
            .methods
            .iter()
            .filter(|method| matches!(method.kind, Kind::Invoke | Kind::Oneway | Kind::Publish))
            .map(|method| {
                let cfgs = method.cfgs();
                let name = &method.name;
                let helper = if method.kind == Kind::Invoke {
                    quote!(serve_invoke)
                } else {
                    quote!(serve_oneway)
                };
                let probe = method.probe(private);
                let args = method.arg_idents();
                let call = self.real_call(method);
                quote! {
                    #(#cfgs)*
                    #name => #probe.#helper(codec, #name, args, move |(#(#args,)*)| async move { #call.await }),
                }
            })
            .collect();
        let unknown = quote! {
            ::std::boxed::Box::pin(::core::future::ready(::core::result::Result::Err(
                #private::ServiceError::unknown(method, #private::MethodKind::Invoke),
            )))
        };
        let (codec, args, body) = if arms.is_empty() {
            (quote!(_), quote!(_), unknown)
        } else {
            (
                quote!(codec),
                quote!(args),
                quote!({
                    #[allow(unused_imports)]
                    use #private::{Serves as _, ServesOtherwise as _, ServesOneway as _, ServesOnewayOtherwise as _};
                    match method { #(#arms)* method => #unknown }
                }),
            )
        };
        quote! {
            fn call(
                self: ::std::sync::Arc<Self>,
                #codec: #private::Codec,
                method: &str,
                #args: #private::Args,
            ) -> #private::BoxFuture<::core::result::Result<#private::Reply, #private::ServiceError>> {
                #body
            }
        }
    }

    fn serve_subscribe(&self) -> TokenStream {
        let private = &self.private;
        let arms: Vec<TokenStream> = self
            .model
            .methods
            .iter()
            .filter(|method| method.kind == Kind::Subscribe)
            .map(|method| {
                let cfgs = method.cfgs();
                let name = &method.name;
                let args: Vec<_> = method.arg_idents().collect();
                let call = self.real_call(method);
                let (real, trait_ident, ident) = (&self.real, self.trait_ident, &method.ident);
                let probe = method.probe(private);
                if method.is_async() {
                    // The future borrows the real client: each start holds its own `Arc` of it.
                    quote! {
                        #(#cfgs)*
                        #name => #probe.serve_subscribe_async(codec, #name, app, move |(#(#args,)*)| {
                            let this = ::std::sync::Arc::clone(&self);
                            async move { <#real as #trait_ident>::#ident(&this.0, #(#args),*).await }
                        }),
                    }
                } else {
                    quote! {
                        #(#cfgs)*
                        #name => #probe.serve_subscribe(codec, #name, app, move |(#(#args,)*)| #call),
                    }
                }
            })
            .collect();
        let unknown = quote! {
            ::core::result::Result::Err(#private::ServiceError::unknown(method, #private::MethodKind::Subscribe))
        };
        let (codec, app, body) = if arms.is_empty() {
            (quote!(_), quote!(_), unknown)
        } else {
            (
                quote!(codec),
                quote!(app),
                quote!({
                    #[allow(unused_imports)]
                    use #private::{
                        ServesSubscribe as _, ServesSubscribeOtherwise as _,
                        ServesSubscribeAsync as _, ServesSubscribeAsyncOtherwise as _,
                    };
                    match method { #(#arms)* method => #unknown }
                }),
            )
        };
        quote! {
            fn subscribe(
                self: ::std::sync::Arc<Self>,
                #codec: #private::Codec,
                method: &str,
                #app: #private::bytes::Bytes,
            ) -> ::core::result::Result<#private::Prepared, #private::ServiceError> {
                #body
            }
        }
    }

    /// Runs the `#[close]` method, if there is one (when it is `#[cfg]`'d out, closes nothing).
    fn serve_close(&self) -> TokenStream {
        let private = &self.private;
        let signature = quote!(fn close(self: ::std::sync::Arc<Self>) -> #private::BoxFuture<()>);
        let nothing = quote!(#signature { ::std::boxed::Box::pin(::core::future::ready(())) });
        let Some(method) = self
            .model
            .methods
            .iter()
            .find(|method| method.kind == Kind::Close)
        else {
            return nothing;
        };
        let call = self.real_call(method);
        let close = quote!(#signature { ::std::boxed::Box::pin(async move { #call.await }) });
        let Some(predicate) = method.cfg_predicate() else {
            return close;
        };
        quote! {
            #[cfg(#predicate)]
            #close
            #[cfg(not(#predicate))]
            #nothing
        }
    }
}
