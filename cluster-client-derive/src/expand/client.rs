//! `{Trait}Client`: the handle users hold. It implements the trait (through its proxy) and has
//! `create`, `is_leader`, `epoch` and `close` of its own.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::Generator;

impl Generator<'_> {
    pub(super) fn client_struct(&self) -> TokenStream {
        let (vis, client, proxy) = (&self.model.vis, &self.client, &self.proxy);
        let doc = format!(
            "The handle to a cluster-shared [`{trait_}`]: the same API whether this process is the \
             leader (which owns the real client) or a follower (whose calls go to the leader over \
             loopback). It implements [`{trait_}`] itself. Build it with [`{client}::create`].",
            trait_ = self.trait_ident,
        );
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #client {
                proxy: #proxy,
            }
        }
    }

    pub(super) fn client_inherent(&self) -> TokenStream {
        let (client, krate) = (&self.client, &self.krate);
        let (schema, create) = (self.schema_const(), self.client_create());
        quote! {
            impl #client {
                #schema

                #create

                /// Whether this process holds the real client now (it may become leader later, after
                /// a failover).
                pub fn is_leader(&self) -> bool {
                    self.proxy.handle.is_leader()
                }

                /// The current leadership term: it grows at every failover.
                pub fn epoch(&self) -> u64 {
                    self.proxy.handle.epoch()
                }

                /// Leaves the cluster: a leader closes its real client and hands over, a follower
                /// disconnects. Calls made afterwards fail with `Error::Closed`.
                ///
                /// # Errors
                ///
                /// If the handle could not shut down cleanly.
                pub async fn close(&self) -> ::core::result::Result<(), #krate::Error> {
                    self.proxy.handle.close().await
                }
            }
        }
    }

    fn client_create(&self) -> TokenStream {
        let (private, krate, client, proxy, serve, trait_ident) = (
            &self.private,
            &self.krate,
            &self.client,
            &self.proxy,
            &self.serve,
            self.trait_ident,
        );
        let [f, fut, r, e] = ["F", "Fut", "R", "E"].map(|name| self.fresh(name));
        let doc = format!(
            "Joins the cluster of the channel `options.name` (default `\"{}\"`) and returns the \
             handle.\n\n`factory` builds the real client. It runs in whichever process is elected \
             leader: in this one now, in this one later after a failover, or never.\n\n# Errors\n\n\
             If no role can be taken: the port is held by something else, no leader appeared in \
             time, the leader refused this process (another schema, its factory failed), or this \
             process's own factory failed.",
            self.model.channel
        );
        quote! {
            #[doc = #doc]
            pub async fn create<#f, #fut, #r, #e>(
                options: #krate::Options,
                factory: #f,
            ) -> ::core::result::Result<Self, #krate::Error>
            where
                #f: ::core::ops::Fn() -> #fut + ::core::marker::Send + ::core::marker::Sync + 'static,
                #fut: ::core::future::Future<Output = ::core::result::Result<#r, #e>>
                    + ::core::marker::Send
                    + 'static,
                #r: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
                #e: ::core::fmt::Display,
            {
                #private::create(options, Self::SCHEMA, move || {
                    let fut = factory();
                    async move { fut.await.map(#serve) }
                })
                .await
                .map(|handle| #client { proxy: #proxy { handle } })
            }
        }
    }

    /// A generic parameter named `name`, unless the trait has that name.
    fn fresh(&self, name: &str) -> Ident {
        let name = if self.trait_ident == name {
            format!("{name}0")
        } else {
            name.to_owned()
        };
        Ident::new(&name, Span::call_site())
    }

    pub(super) fn client_impl(&self) -> TokenStream {
        let (trait_ident, client, proxy) = (self.trait_ident, &self.client, &self.proxy);
        let methods = self.model.methods.iter().map(|method| {
            let cfgs = method.cfgs();
            let signature = method.signature();
            let ident = &method.ident;
            let args = method.arg_idents();
            quote!(#(#cfgs)* #signature { <#proxy as #trait_ident>::#ident(&self.proxy, #(#args),*) })
        });
        quote! {
            #[allow(deprecated)]
            impl #trait_ident for #client {
                #(#methods)*
            }
        }
    }
}
