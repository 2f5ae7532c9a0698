//! The attribute's own options (`name`, `crate`, `rename_all`) and the method tags (`#[invoke]`, `#[oneway]`, …).

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, Lit, LitBool, LitStr, Meta, Path, Token};

use crate::errors::Errors;
use crate::rename::Rename;

/// What a method does on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Invoke,
    Oneway,
    Subscribe,
    Publish,
    Close,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Invoke,
        Kind::Oneway,
        Kind::Subscribe,
        Kind::Publish,
        Kind::Close,
    ];

    /// The tag's name, as written in `#[..]` and as `MethodKind::as_str` spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Invoke => "invoke",
            Kind::Oneway => "oneway",
            Kind::Subscribe => "subscribe",
            Kind::Publish => "publish",
            Kind::Close => "close",
        }
    }

    /// The variant of `__private::MethodKind`.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Kind::Invoke => "Invoke",
            Kind::Oneway => "Oneway",
            Kind::Subscribe => "Subscribe",
            Kind::Publish => "Publish",
            Kind::Close => "Close",
        }
    }

    /// Every kind but subscribe is an `async fn`.
    pub(crate) fn is_async(self) -> bool {
        self != Kind::Subscribe
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Invoke => &["name", "timeout_ms", "idempotent"],
            Kind::Subscribe => &["name", "broadcast", "resubscribe"],
            Kind::Oneway | Kind::Publish => &["name"],
            Kind::Close => &[],
        }
    }

    fn of(attr: &Attribute) -> Option<Kind> {
        let ident = attr.path().get_ident()?;
        Kind::ALL.into_iter().find(|kind| ident == kind.as_str())
    }
}

/// Whether `attr` is one of the method tags (stripped from every emitted item).
pub(crate) fn is_tag(attr: &Attribute) -> bool {
    Kind::of(attr).is_some()
}

/// A method's tag with its options.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    pub(crate) kind: Kind,
    /// The name on the wire (`name = "..."`), instead of the Rust name.
    pub(crate) name: Option<String>,
    pub(crate) timeout_ms: Option<u32>,
    pub(crate) idempotent: bool,
    pub(crate) broadcast: bool,
    /// Subscribe upstream again when the real client's stream fails (`resubscribe`).
    pub(crate) resubscribe: bool,
}

/// A method's tags.
pub(crate) enum Tagged {
    /// No tag: an `async fn` is an invoke.
    Untagged,
    /// One tag (its options reported if bad; the defaults stand in for them).
    One(Tag),
    /// Several tags (reported): the kind is unknown.
    Conflict,
}

/// The method's tag and its other attributes. Errors go to `errors`.
pub(crate) fn method_tag(attrs: &[Attribute], errors: &mut Errors) -> (Tagged, Vec<Attribute>) {
    let mut tagged = Tagged::Untagged;
    let mut rest = Vec::new();
    for attr in attrs {
        let Some(kind) = Kind::of(attr) else {
            rest.push(attr.clone());
            continue;
        };
        let first = match &tagged {
            Tagged::Untagged => {
                tagged = Tagged::One(parse_tag(attr, kind, errors));
                continue;
            }
            Tagged::One(first) => first.kind,
            Tagged::Conflict => continue,
        };
        let message = if first == kind {
            format!("duplicate `#[{}]`: remove this one", kind.as_str())
        } else {
            format!(
                "a method has one kind: `#[{}]` conflicts with `#[{}]` above; keep one",
                kind.as_str(),
                first.as_str()
            )
        };
        errors.push(syn::Error::new_spanned(attr, message));
        if first != kind {
            tagged = Tagged::Conflict;
        }
    }
    (tagged, rest)
}

/// The tag with its options; a bad option is reported and its default kept.
fn parse_tag(attr: &Attribute, kind: Kind, errors: &mut Errors) -> Tag {
    let mut tag = Tag {
        kind,
        name: None,
        timeout_ms: None,
        idempotent: false,
        broadcast: true,
        resubscribe: false,
    };
    match &attr.meta {
        Meta::Path(_) => return tag,
        Meta::NameValue(nv) => {
            let message = match kind.options() {
                [] => format!("`#[{}]` takes no value: write `#[{0}]`", kind.as_str()),
                [first, ..] => format!(
                    "write `#[{}]` or `#[{0}({first} ..)]`, not `#[{0} = ..]`",
                    kind.as_str()
                ),
            };
            errors.push(syn::Error::new_spanned(&nv.value, message));
            return tag;
        }
        Meta::List(_) => {}
    }
    let mut seen: Vec<String> = Vec::new();
    let parsed = attr.parse_nested_meta(|meta| {
        let label = label(&meta.path);
        if !kind.options().contains(&label.as_str()) {
            errors.push(unknown(&meta.path, &label, kind.options(), kind));
            return skip_value(meta.input);
        }
        if seen.contains(&label) {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format!("duplicate argument `{label}`: remove this one"),
            ));
            return skip_value(meta.input);
        }
        seen.push(label.clone());
        let parsed = match label.as_str() {
            "name" => wire_name(&meta).map(|name| tag.name = Some(name)),
            "timeout_ms" => timeout_ms(&meta).map(|ms| tag.timeout_ms = Some(ms)),
            "idempotent" => flag(&meta, &label).map(|()| tag.idempotent = true),
            "resubscribe" => flag(&meta, &label).map(|()| tag.resubscribe = true),
            _ => broadcast(&meta).map(|value| tag.broadcast = value),
        };
        if let Err(error) = parsed {
            errors.push(error);
            return skip_value(meta.input);
        }
        Ok(())
    });
    errors.check(parsed);
    tag
}

/// `name = "getData"`: the method's name on the wire, a non-empty string literal.
fn wire_name(meta: &ParseNestedMeta) -> syn::Result<String> {
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(name),
            ..
        }) if !name.value().is_empty() => Ok(name.value()),
        _ => Err(syn::Error::new_spanned(
            &expr,
            "`name` takes the method's name on the wire as a non-empty string literal, e.g. \
             `name = \"getData\"`",
        )),
    }
}

/// `timeout_ms = N`: an integer literal in `1..=i32::MAX` (the wire's signed 32-bit timeout).
fn timeout_ms(meta: &ParseNestedMeta) -> syn::Result<u32> {
    let expr: Expr = meta.value()?.parse()?;
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = &expr
    else {
        return Err(syn::Error::new_spanned(
            &expr,
            "`timeout_ms` takes an integer literal of milliseconds, e.g. `timeout_ms = 5_000`",
        ));
    };
    let value: u64 = int.base10_parse().map_err(|_| {
        syn::Error::new_spanned(
            int,
            "`timeout_ms` takes a plain integer, e.g. `timeout_ms = 5_000`",
        )
    })?;
    if value == 0 {
        return Err(syn::Error::new_spanned(
            int,
            "`timeout_ms` must be at least 1; omit it to use `Options::response_timeout`",
        ));
    }
    u32::try_from(value)
        .ok()
        .filter(|ms| i32::try_from(*ms).is_ok())
        .ok_or_else(|| {
            syn::Error::new_spanned(
                int,
                "`timeout_ms` must fit the wire's signed 32-bit timeout: at most 2_147_483_647 (about 24.8 days)",
            )
        })
}

/// A flag such as `idempotent`: no value.
fn flag(meta: &ParseNestedMeta, label: &str) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        Err(meta.error(format!(
            "`{label}` is a flag: write `{label}` alone, without a value"
        )))
    }
}

/// `broadcast = true | false`.
fn broadcast(meta: &ParseNestedMeta) -> syn::Result<bool> {
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(LitBool { value, .. }),
            ..
        }) => Ok(*value),
        _ => Err(syn::Error::new_spanned(
            &expr,
            "`broadcast` takes `true` (every subscriber gets each item) or `false` (one does)",
        )),
    }
}

/// The options of `#[cluster_client(..)]`.
#[derive(Default)]
pub(crate) struct TraitOptions {
    /// The channel name (`name = "..."`).
    pub(crate) name: Option<LitStr>,
    /// The path of the runtime crate (`crate = "..."`).
    pub(crate) krate: Option<Path>,
    /// The rule that gives the methods their wire names (`rename_all = "camelCase"`).
    pub(crate) rename_all: Option<Rename>,
}

impl TraitOptions {
    const NAMES: &'static [&'static str] = &["name", "crate", "rename_all"];

    /// Parses the attribute's arguments, reporting every bad one.
    pub(crate) fn parse(args: TokenStream) -> syn::Result<TraitOptions> {
        let mut options = TraitOptions::default();
        let mut errors = Errors::default();
        let parser = syn::meta::parser(|meta| {
            let label = label(&meta.path);
            let duplicate = match label.as_str() {
                "name" => options.name.is_some(),
                "crate" => options.krate.is_some(),
                "rename_all" => options.rename_all.is_some(),
                _ => {
                    errors.push(unknown_option(&meta.path, &label));
                    return skip_value(meta.input);
                }
            };
            if duplicate {
                errors.push(syn::Error::new_spanned(
                    &meta.path,
                    format!("duplicate argument `{label}`: remove this one"),
                ));
                return skip_value(meta.input);
            }
            let parsed = match label.as_str() {
                "name" => channel_name(&meta).map(|name| options.name = Some(name)),
                "rename_all" => rename_rule(&meta).map(|rule| options.rename_all = Some(rule)),
                _ => crate_path(&meta).map(|path| options.krate = Some(path)),
            };
            if let Err(error) = parsed {
                errors.push(error);
                return skip_value(meta.input);
            }
            Ok(())
        });
        parser.parse2(args)?;
        errors.finish(options)
    }
}

fn unknown_option(path: &Path, label: &str) -> syn::Error {
    syn::Error::new_spanned(
        path,
        format!(
            "unknown argument `{label}`, expected one of: {}",
            quoted(TraitOptions::NAMES)
        ),
    )
}

/// `name = "channel"`.
fn channel_name(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(name),
            ..
        }) if !name.value().is_empty() => Ok(name.clone()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(name),
            ..
        }) => Err(syn::Error::new_spanned(
            name,
            "the channel name must not be empty; omit `name` to use the trait's name",
        )),
        _ => Err(syn::Error::new_spanned(
            &expr,
            "`name` takes a string literal, e.g. `name = \"registry\"`",
        )),
    }
}

/// `rename_all = "camelCase"`.
fn rename_rule(meta: &ParseNestedMeta) -> syn::Result<Rename> {
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(rule),
            ..
        }) => Rename::parse(rule),
        _ => Err(syn::Error::new_spanned(
            &expr,
            "`rename_all` takes a rule as a string literal, e.g. `rename_all = \"camelCase\"`",
        )),
    }
}

/// `crate = "::path::to::cluster_client"`.
fn crate_path(meta: &ParseNestedMeta) -> syn::Result<Path> {
    let expr: Expr = meta.value()?.parse()?;
    let message = "`crate` takes the path of the cluster-client crate as a string, e.g. `crate = \"::my_cluster_client\"`";
    match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(path),
            ..
        }) => path
            .parse_with(Path::parse_mod_style)
            .map_err(|_| syn::Error::new_spanned(path, message)),
        _ => Err(syn::Error::new_spanned(&expr, message)),
    }
}

fn unknown(path: &Path, label: &str, expected: &[&str], kind: Kind) -> syn::Error {
    let message = if expected.is_empty() {
        format!(
            "unknown argument `{label}`: `#[{}]` takes no arguments",
            kind.as_str()
        )
    } else {
        format!(
            "unknown argument `{label}`, expected one of: {}",
            quoted(expected)
        )
    };
    syn::Error::new_spanned(path, message)
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The label as written (`timeout_ms`, or `a::b` for a path).
fn label(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Skips what follows an argument that was reported, up to the next comma.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}
