//! The validated trait: everything the expansion needs, and nothing it must check again.

mod signature;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{
    Attribute, Ident, Item, ItemTrait, Path, PathSegment, Token, TraitItem, TraitItemFn, Type,
    Visibility,
};

use crate::attr::{self, Kind, Tagged, TraitOptions};
use crate::errors::Errors;
use crate::rename::Rename;

/// Names the generated `{Trait}Client` has of its own; a trait method may not take them.
const CLIENT_METHODS: [&str; 7] = [
    "create",
    "create_with",
    "is_leader",
    "epoch",
    "roles",
    "stats",
    "close",
];

/// The trait, checked.
pub(crate) struct Model {
    /// The trait's attributes (docs and others), kept as written.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    /// The channel name: the `name` option, else the trait's name.
    pub(crate) channel: String,
    /// The runtime crate: the `crate` option, else `::cluster_client`.
    pub(crate) krate: Path,
    pub(crate) methods: Vec<Method>,
}

/// One method, checked.
pub(crate) struct Method {
    /// The method's attributes but its tag (docs, `#[cfg]`s, lints).
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) ident: Ident,
    /// The name on the wire (`r#type` is `type`).
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) timeout_ms: Option<u32>,
    pub(crate) idempotent: bool,
    pub(crate) broadcast: bool,
    pub(crate) resubscribe: bool,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Output,
}

/// A named argument.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// What a method returns.
pub(crate) enum Output {
    /// Nothing: oneway, publish, close.
    Unit,
    /// An invoke's `Result<ok, err>` (`ty` is the whole type as written).
    Result {
        ty: Box<Type>,
        ok: Box<Type>,
        err: Box<Type>,
    },
    /// A subscribe's `Subscription<item>` (`ty` is the whole type as written); `err` for the
    /// `async fn` form returning `Result<Subscription<item>, err>`.
    Subscription {
        ty: Box<Type>,
        item: Box<Type>,
        err: Option<Box<Type>>,
    },
}

impl Method {
    /// Whether it is an `async fn`: every kind but a subscribe, and a subscribe that resolves once
    /// it is live upstream.
    pub(crate) fn is_async(&self) -> bool {
        self.kind.is_async() || matches!(self.output, Output::Subscription { err: Some(_), .. })
    }

    /// The method's `#[cfg]`s, copied onto every item generated for it.
    pub(crate) fn cfgs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|attr| attr.path().is_ident("cfg"))
    }

    /// `all(p, q)` for `#[cfg(p)] #[cfg(q)]`: where the method is compiled in. `None` when it always is.
    pub(crate) fn cfg_predicate(&self) -> Option<TokenStream> {
        let predicates: Vec<TokenStream> = self
            .cfgs()
            .filter_map(|attr| {
                attr.meta
                    .require_list()
                    .ok()
                    .map(|list| list.tokens.clone())
            })
            .collect();
        (!predicates.is_empty()).then(|| quote!(all(#(#predicates),*)))
    }

    /// The argument names.
    pub(crate) fn arg_idents(&self) -> impl Iterator<Item = &Ident> {
        self.args.iter().map(|arg| &arg.ident)
    }

    /// `private::Probe::<(A, ..), T, E>::NEW`: the method's argument tuple, value and error (`()`
    /// where it has none), through which its generated body calls the runtime.
    pub(crate) fn probe(&self, private: &TokenStream) -> TokenStream {
        let types = self.args.iter().map(|arg| &arg.ty);
        let unit = quote!(());
        let (value, error) = match &self.output {
            Output::Unit => (unit.clone(), unit),
            Output::Result { ok, err, .. } => (ok.to_token_stream(), err.to_token_stream()),
            Output::Subscription { item, err, .. } => (
                item.to_token_stream(),
                err.as_ref().map_or(unit, ToTokens::to_token_stream),
            ),
        };
        quote!(#private::Probe::<(#(#types,)*), #value, #error>::NEW)
    }

    /// `fn name(&self, a: A, ..) -> R`, with `R` the trait's return type: `impl Future<Output = T> + Send`
    /// for every kind but subscribe.
    pub(crate) fn signature(&self) -> TokenStream {
        let ident = &self.ident;
        let args = self
            .args
            .iter()
            .map(|Arg { ident, ty }| quote!(#ident: #ty));
        let value = match &self.output {
            Output::Unit => quote!(()),
            Output::Result { ty, .. } | Output::Subscription { ty, .. } => ty.to_token_stream(),
        };
        let ret = if self.is_async() {
            quote!(impl ::core::future::Future<Output = #value> + ::core::marker::Send)
        } else {
            value
        };
        quote!(fn #ident(&self, #(#args),*) -> #ret)
    }
}

impl Model {
    /// Checks the attribute's arguments and the trait, reporting every error at once.
    pub(crate) fn parse(args: TokenStream, input: TokenStream) -> syn::Result<Model> {
        let mut errors = Errors::default();
        let options = errors.check(TraitOptions::parse(args)).unwrap_or_default();
        let item = match syn::parse2::<Item>(input)? {
            Item::Trait(item) => item,
            _ => {
                return errors.fail(syn::Error::new(
                    Span::call_site(),
                    "`#[cluster_client]` goes on a trait: `pub trait Registry { .. }`",
                ));
            }
        };
        check_trait(&item, &mut errors);
        let mut methods = Vec::new();
        for trait_item in &item.items {
            match trait_item {
                TraitItem::Fn(method) => {
                    methods.extend(Method::parse(method, options.rename_all, &mut errors));
                }
                other => errors.push(associated_item(other)),
            }
        }
        check_names(&methods, &item.ident, &mut errors);
        let channel = options
            .name
            .map_or_else(|| item.ident.unraw().to_string(), |name| name.value());
        let krate = options.krate.unwrap_or_else(default_crate);
        errors.finish(Model {
            attrs: item.attrs,
            vis: item.vis,
            ident: item.ident,
            channel,
            krate,
            methods,
        })
    }

    /// `{Trait}Client`, `Serve{Trait}`.
    pub(crate) fn generated_ident(&self, prefix: &str, suffix: &str) -> Ident {
        Ident::new(
            &format!("{prefix}{}{suffix}", self.ident.unraw()),
            self.ident.span(),
        )
    }
}

/// `::cluster_client`.
fn default_crate() -> Path {
    Path {
        leading_colon: Some(Token![::](Span::call_site())),
        segments: [PathSegment::from(Ident::new(
            "cluster_client",
            Span::call_site(),
        ))]
        .into_iter()
        .collect(),
    }
}

/// Trait-level rules: no `unsafe`/`auto`, generics, where clause or supertraits.
fn check_trait(item: &ItemTrait, errors: &mut Errors) {
    if let Some(token) = &item.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "remove `unsafe`: a `#[cluster_client]` trait is implemented by generated safe code",
        ));
    }
    if let Some(token) = &item.modifiers.auto_token {
        errors.push(syn::Error::new_spanned(token, "remove `auto`"));
    }
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a `#[cluster_client]` trait cannot be generic: the leader and its followers must agree on \
             one set of concrete types; remove the parameters",
        ));
    }
    if let Some(clause) = &item.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            clause,
            "remove the where clause: a `#[cluster_client]` trait has no bounds",
        ));
    }
    if !item.supertraits.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.supertraits,
            "remove the supertraits: the generated client implements only this trait (`Serve{Trait}` \
             already requires `Send + Sync + 'static` of the real client)",
        ));
    }
}

fn associated_item(item: &TraitItem) -> syn::Error {
    let (what, tokens) = match item {
        TraitItem::Type(item) => ("associated types", quote!(#item)),
        TraitItem::Const(item) => ("associated consts", quote!(#item)),
        TraitItem::Macro(item) => ("macro invocations", quote!(#item)),
        other => ("items other than methods", quote!(#other)),
    };
    syn::Error::new_spanned(
        tokens,
        format!(
            "{what} are not supported in a `#[cluster_client]` trait: every item must be a method \
             that can be called across processes; use concrete types and move this out of the trait"
        ),
    )
}

/// Duplicate names, and names the generated `{Trait}Client` already has.
fn check_names(methods: &[Method], trait_ident: &Ident, errors: &mut Errors) {
    let client = format!("{}Client", trait_ident.unraw());
    for (index, method) in methods.iter().enumerate() {
        let name = method.name.as_str();
        if methods[..index].iter().any(|earlier| earlier.name == name) {
            errors.push(syn::Error::new_spanned(
                &method.ident,
                format!("duplicate method name `{name}` on the wire: rename one of them"),
            ));
        }
        let closes_before = methods[..index]
            .iter()
            .filter(|m| m.kind == Kind::Close)
            .count();
        if method.kind == Kind::Close && closes_before > 0 {
            errors.push(syn::Error::new_spanned(
                &method.ident,
                "only one method can be `#[close]`: the leader calls it once, when it shuts down",
            ));
        }
        // The generated client's own methods clash by Rust name, whatever the wire name.
        let rust = method.ident.unraw().to_string();
        let name = rust.as_str();
        if !CLIENT_METHODS.contains(&name) || (name == "close" && method.kind == Kind::Close) {
            continue;
        }
        let message = if name == "close" {
            format!(
                "`close` clashes with `{client}::close`: tag it `#[close]` (an `async fn close(&self)` \
                 called on the real client when its leader shuts down), or rename it"
            )
        } else {
            format!("`{name}` clashes with the generated `{client}::{name}`: rename the method")
        };
        errors.push(syn::Error::new_spanned(&method.ident, message));
    }
}

impl Method {
    fn parse(item: &TraitItemFn, rename: Option<Rename>, errors: &mut Errors) -> Option<Method> {
        let (tag, attrs) = attr::method_tag(&item.attrs, errors);
        let sig = &item.sig;
        let kind = match &tag {
            Tagged::One(tag) => Some(tag.kind),
            Tagged::Conflict => None,
            Tagged::Untagged if sig.asyncness.is_some() => Some(Kind::Invoke),
            Tagged::Untagged => {
                errors.push(syn::Error::new_spanned(
                    &sig.ident,
                    untagged_sync_message(sig),
                ));
                None
            }
        };
        if let Some(body) = &item.default {
            errors.push(syn::Error::new(
                body.brace_token.span.join(),
                "remove the default body: the leader calls the real client's own method and followers \
                 forward the call, so a default here would never run; implement it on the real client",
            ));
        }
        if let Some(token) = &item.modifiers.defaultness {
            errors.push(syn::Error::new_spanned(token, "remove `default`"));
        }
        signature::check_modifiers(sig, errors);
        signature::check_receiver(sig, errors);
        let args = signature::args(sig, errors);
        let output = kind.and_then(|kind| signature::output(sig, kind, errors));
        if let (Some(Kind::Close), Some(first)) = (kind, args.first()) {
            errors.push(syn::Error::new(
                first.ident.span(),
                "a `#[close]` method takes only `&self`: remove the arguments",
            ));
        }
        let tag = match tag {
            Tagged::One(tag) => tag,
            Tagged::Untagged | Tagged::Conflict => attr::Tag {
                kind: Kind::Invoke,
                name: None,
                timeout_ms: None,
                idempotent: false,
                broadcast: true,
                resubscribe: false,
            },
        };
        Some(Method {
            attrs,
            ident: sig.ident.clone(),
            name: tag.name.clone().unwrap_or_else(|| {
                let rust = sig.ident.unraw().to_string();
                rename.map_or_else(|| rust.clone(), |rule| rule.apply(&rust))
            }),
            kind: kind?,
            timeout_ms: tag.timeout_ms,
            idempotent: tag.idempotent,
            broadcast: tag.broadcast,
            resubscribe: tag.resubscribe,
            args,
            output: output?,
        })
    }
}

fn untagged_sync_message(sig: &syn::Signature) -> String {
    if signature::subscription_item(&sig.output).is_some() {
        "tag this method `#[subscribe]`: only an `async fn` is an invoke without a tag".to_owned()
    } else {
        format!(
            "make it `async fn {}` (an invoke), or tag it: `#[subscribe]` for a plain `fn` returning \
             `Subscription<T>`",
            sig.ident
        )
    }
}
