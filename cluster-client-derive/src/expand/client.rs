//! `{Trait}Client`: the handle users hold. It implements the trait, each method one call into
//! `__private` with the method's own `MethodSpec`, and has `create`, `is_leader`, `epoch`, `roles`,
//! `stats` and `close` of its own.

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::Generator;
use crate::attr::Kind;
use crate::model::Method;

impl Generator<'_> {
    pub(super) fn client_struct(&self) -> TokenStream {
        let (vis, client, private) = (&self.model.vis, &self.client, &self.private);
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
                handle: #private::Handle,
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
                    self.handle.is_leader()
                }

                /// The current leadership term: it grows at every failover.
                pub fn epoch(&self) -> u64 {
                    self.handle.epoch()
                }

                /// This process's role, now and at every change: leader or follower, the term,
                /// and who leads (see `Handle::roles`).
                pub fn roles(&self) -> #krate::Roles {
                    self.handle.roles()
                }

                /// A snapshot of the channel, filled by its leader (see `Handle::stats`).
                pub async fn stats(&self) -> ::core::result::Result<#krate::stats::Stats, #krate::Error> {
                    self.handle.stats().await
                }

                /// Leaves the cluster: a leader closes its real client and hands over, a follower
                /// disconnects. Calls made afterwards fail with `Error::Closed`; closing twice is
                /// harmless.
                pub async fn close(&self) {
                    self.handle.close().await
                }
            }
        }
    }

    fn client_create(&self) -> TokenStream {
        let (private, krate, client, serve, trait_ident) = (
            &self.private,
            &self.krate,
            &self.client,
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
        let doc_with = "As [`Self::create`], with a factory that is given the leader's \
             `Term` (of the runtime crate). The real client keeps it to say its upstream came back \
             (`Term::upstream_restored`: the leader sends every remembered publish again) or that \
             it is broken for good (`Term::resign`: the leader steps down, and the next election \
             runs the factory again).";
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
                Self::create_with(options, move |_term| factory()).await
            }

            #[doc = #doc_with]
            pub async fn create_with<#f, #fut, #r, #e>(
                options: #krate::Options,
                factory: #f,
            ) -> ::core::result::Result<Self, #krate::Error>
            where
                #f: ::core::ops::Fn(#krate::Term) -> #fut
                    + ::core::marker::Send
                    + ::core::marker::Sync
                    + 'static,
                #fut: ::core::future::Future<Output = ::core::result::Result<#r, #e>>
                    + ::core::marker::Send
                    + 'static,
                #r: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
                #e: ::core::fmt::Display,
            {
                #private::create_with(options, Self::SCHEMA, move |term| {
                    let fut = factory(term);
                    async move { fut.await.map(#serve) }
                })
                .await
                .map(|handle| #client { handle })
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
        let (trait_ident, client) = (self.trait_ident, &self.client);
        let methods = self
            .model
            .methods
            .iter()
            .enumerate()
            .map(|(position, method)| {
                let cfgs = method.cfgs();
                let signature = method.signature();
                let body = self.client_body(position, method);
                quote!(#(#cfgs)* #signature { #body })
            });
        quote! {
            impl #trait_ident for #client {
                #(#methods)*
            }
        }
    }

    /// One call into `__private`, with the method's entry of `SCHEMA`.
    fn client_body(&self, position: usize, method: &Method) -> TokenStream {
        let private = &self.private;
        let spec = self.spec_ref(position);
        let args = method.arg_idents();
        let args = quote!((#(#args,)*));
        let probe = method.probe(private);
        // Through the probe: types that cannot cross the wire are reported once, by the
        // assertions on them, not again here (see `__private::Probe`).
        let (traits, call) = match method.kind {
            Kind::Invoke => (
                ["Invokes", "InvokesOtherwise"],
                quote!(invoke(&self.handle, #spec, #args)),
            ),
            Kind::Oneway => (
                ["Sends", "SendsOtherwise"],
                quote!(oneway(&self.handle, #spec, #args)),
            ),
            Kind::Publish => (
                ["Sends", "SendsOtherwise"],
                quote!(publish(&self.handle, #spec, #args)),
            ),
            Kind::Subscribe if method.is_async() => (
                ["Invokes", "InvokesOtherwise"],
                quote!(subscribe_live(&self.handle, #spec, #args)),
            ),
            Kind::Subscribe => (
                ["Subscribes", "SubscribesOtherwise"],
                quote!(subscribe(&self.handle, #spec, #args)),
            ),
            Kind::Close => return quote!(#private::close(&self.handle)),
        };
        let traits = traits.map(|name| Ident::new(name, Span::call_site()));
        quote!({
            #[allow(unused_imports)]
            use #private::{#(#traits as _),*};
            #probe.#call
        })
    }

    /// `&Self::SCHEMA.methods[i]` for the method at `position` in the trait. A `#[cfg]`'d method
    /// before it counts only where it is compiled in, as in `SCHEMA.methods`:
    /// `[2 + ::core::cfg!(all(feature = "x")) as usize]`.
    fn spec_ref(&self, position: usize) -> TokenStream {
        let before = &self.model.methods[..position];
        let fixed = before
            .iter()
            .filter(|m| m.cfg_predicate().is_none())
            .count();
        let fixed = Literal::usize_unsuffixed(fixed);
        let counted = before.iter().filter_map(Method::cfg_predicate);
        quote!(&Self::SCHEMA.methods[#fixed #(+ ::core::cfg!(#counted) as usize)*])
    }
}
