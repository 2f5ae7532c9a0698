//! The rules on one method's signature: modifiers, receiver, arguments, return type.

use syn::{
    FnArg, GenericArgument, Pat, PathArguments, ReceiverKind, ReturnType, Safety, Signature, Type,
};

use super::{Arg, Output};
use crate::attr::Kind;
use crate::errors::Errors;

/// The most arguments a method takes (the runtime's argument tuples go up to 12).
const MAX_ARGS: usize = 12;

/// No `const`, `unsafe`, ABI, variadic, generics or where clause.
pub(super) fn check_modifiers(sig: &Signature, errors: &mut Errors) {
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            "remove `const`: every method is called across processes",
        ));
    }
    match &sig.safety {
        Safety::Unsafe(token) => errors.push(syn::Error::new_spanned(
            token,
            "remove `unsafe`: calls are forwarded by generated safe code, which cannot uphold a contract",
        )),
        Safety::Safe(token) => errors.push(syn::Error::new_spanned(token, "remove `safe`")),
        Safety::Default => {}
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "remove the ABI: methods are called as Rust",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "remove `...`: arguments are sent as a fixed list",
        ));
    }
    let generics = &sig.generics;
    if !generics.params.is_empty() {
        let message = if generics.lifetimes().count() == generics.params.len() {
            "remove the lifetime parameters: arguments and results travel by value between processes, \
             so they own their data"
        } else {
            "generic methods are not supported: the leader decodes each argument as one concrete type; \
             replace the type parameters with concrete types"
        };
        errors.push(syn::Error::new_spanned(generics, message));
    }
    if let Some(clause) = &generics.where_clause {
        errors.push(syn::Error::new_spanned(
            clause,
            "remove the where clause: a `#[cluster_client]` method has no bounds",
        ));
    }
}

/// The receiver must be `&self`.
pub(super) fn check_receiver(sig: &Signature, errors: &mut Errors) {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            "add `&self` as the first parameter: every method is called on a client",
        ));
        return;
    };
    let message = match &receiver.kind {
        ReceiverKind::Reference(_, None, None) if receiver.mutability.is_none() => return,
        ReceiverKind::Reference(_, _, Some(_)) => {
            "take `&self`, not `&mut self`: the client is shared by every caller in the process"
        }
        ReceiverKind::Reference(_, Some(lifetime), None) => {
            errors.push(syn::Error::new_spanned(
                lifetime,
                "remove the lifetime: write `&self`",
            ));
            return;
        }
        ReceiverKind::Value => {
            "take `&self`: a method cannot consume the client, which every caller shares"
        }
        _ => "write `&self`: the generated client implements every method on `&self`",
    };
    errors.push(syn::Error::new_spanned(receiver, message));
}

/// The named arguments after `&self`.
pub(super) fn args(sig: &Signature, errors: &mut Errors) -> Vec<Arg> {
    let mut args = Vec::new();
    let typed = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => Some(typed),
        FnArg::Receiver(_) => None,
    });
    for (index, typed) in typed.enumerate() {
        if index == MAX_ARGS {
            errors.push(syn::Error::new_spanned(
                typed,
                format!("a method takes at most {MAX_ARGS} arguments: group the rest in a struct"),
            ));
        }
        if let Some(attr) = typed.attrs.first() {
            errors.push(syn::Error::new_spanned(
                attr,
                "remove the attribute: arguments of a `#[cluster_client]` method carry none",
            ));
        }
        check_wire_type(&typed.ty, "arguments", errors);
        match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => args.push(Arg {
                ident: pat.ident.clone(),
                ty: (*typed.ty).clone(),
            }),
            Pat::Wild(_) => errors.push(syn::Error::new_spanned(
                &typed.pat,
                "name the argument, e.g. `value: T`: it is forwarded to the leader by name",
            )),
            pat => errors.push(syn::Error::new_spanned(
                pat,
                "patterns aren't allowed in the arguments of a `#[cluster_client]` method: bind one \
                 name, e.g. `pair: (u8, u32)`, and destructure it in the implementation",
            )),
        }
    }
    args
}

/// The return type, checked against the kind; `async` checked too.
pub(super) fn output(sig: &Signature, kind: Kind, errors: &mut Errors) -> Option<Output> {
    if !check_asyncness(sig, kind, errors) {
        return None;
    }
    let unit = |what: &str, errors: &mut Errors| match &sig.output {
        ReturnType::Default => Some(Output::Unit),
        ReturnType::Type(_, ty) if is_unit(ty) => Some(Output::Unit),
        ReturnType::Type(_, ty) => {
            errors.push(syn::Error::new_spanned(ty, what));
            None
        }
    };
    match kind {
        Kind::Invoke => match result_parts(&sig.output) {
            Some((ty, ok, err)) => {
                check_wire_type(&ok, "results", errors);
                check_wire_type(&err, "errors", errors);
                Some(Output::Result {
                    ty: Box::new(ty),
                    ok: Box::new(ok),
                    err: Box::new(err),
                })
            }
            // An untagged `async fn close(&self)` is most likely meant as the real client's close.
            None if sig.ident == "close" && matches!(sig.output, ReturnType::Default) => {
                errors.push(syn::Error::new_spanned(
                    &sig.ident,
                    "an untagged `close` is an invoke, which returns `Result<T, E>`: tag it \
                     `#[close]` to have it called on the real client when its leader shuts down \
                     (the generated client's own `close()` leaves the cluster), or rename it",
                ));
                None
            }
            None => {
                let message = "an invoke returns `Result<T, E>` with `E: From<cluster_client::Error>` \
                               (it carries transport failures): write `-> Result<T, E>` (a \
                               one-parameter alias such as `io::Result<T>` is not recognised), or tag \
                               the method `#[oneway]` if nothing answers";
                errors.push(match &sig.output {
                    ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
                    ReturnType::Default => syn::Error::new_spanned(&sig.ident, message),
                });
                None
            }
        },
        Kind::Oneway => unit(
            "a `#[oneway]` method returns nothing: remove the return type, or make it an `#[invoke]` \
             returning `Result<T, E>`",
            errors,
        ),
        Kind::Publish => unit(
            "a `#[publish]` method returns nothing: remove the return type",
            errors,
        ),
        Kind::Close => unit(
            "a `#[close]` method returns nothing: remove the return type",
            errors,
        ),
        Kind::Subscribe => match subscribe_output(&sig.output) {
            Some((ty, item, err)) => {
                check_wire_type(&item, "subscription items", errors);
                if let Some(err) = &err {
                    check_wire_type(err, "errors", errors);
                }
                check_subscribe_asyncness(sig, err.is_some(), errors);
                Some(Output::Subscription {
                    ty: Box::new(ty),
                    item: Box::new(item),
                    err: err.map(Box::new),
                })
            }
            None => {
                let message = "a `#[subscribe]` method returns `Subscription<T>` \
                               (`cluster_client::Subscription`, a `Stream` of `T`), or, as an \
                               `async fn`, `Result<Subscription<T>, E>`";
                errors.push(match &sig.output {
                    ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
                    ReturnType::Default => syn::Error::new_spanned(&sig.ident, message),
                });
                None
            }
        },
    }
}

/// Whether the return type is worth checking: not if the method was written in the desugared
/// `-> impl Future` form (reported here).
fn check_asyncness(sig: &Signature, kind: Kind, errors: &mut Errors) -> bool {
    if sig.asyncness.is_some() || !kind.is_async() {
        return true;
    }
    let returns_future =
        matches!(&sig.output, ReturnType::Type(_, ty) if matches!(peel(ty), Type::ImplTrait(_)));
    let message = if returns_future {
        format!(
            "write `async fn {}(..) -> T`: the macro emits the `impl Future<Output = T> + Send` \
             form itself",
            sig.ident
        )
    } else {
        format!(
            "make it `async fn`: a `#[{}]` method is awaited",
            kind.as_str()
        )
    };
    errors.push(syn::Error::new_spanned(sig.fn_token, message));
    !returns_future
}

/// A `#[subscribe]` is a plain `fn` returning `Subscription<T>`, or an `async fn` returning
/// `Result<Subscription<T>, E>`.
fn check_subscribe_asyncness(sig: &Signature, fallible: bool, errors: &mut Errors) {
    match (&sig.asyncness, fallible) {
        (Some(token), false) => errors.push(syn::Error::new_spanned(
            token,
            "remove `async`, or return `Result<Subscription<T>, E>`: a plain `#[subscribe]` \
             returns its `Subscription<T>` at once, and an `async` one resolves once the \
             subscription is live upstream, or fails with `E`",
        )),
        (None, true) => errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "make it `async fn`: a `#[subscribe]` returning `Result<Subscription<T>, E>` resolves \
             once the subscription is live upstream",
        )),
        _ => {}
    }
}

/// `Subscription<T>` as (whole, T, None), or `Result<Subscription<T>, E>` as (whole, T, Some(E)).
fn subscribe_output(output: &ReturnType) -> Option<(Type, Type, Option<Type>)> {
    if let Some((ty, item)) = subscription_item(output) {
        return Some((ty, item, None));
    }
    let (ty, ok, err) = result_parts(output)?;
    let ok = ReturnType::Type(Default::default(), Box::new(ok));
    let (_, item) = subscription_item(&ok)?;
    Some((ty, item, Some(err)))
}

fn is_unit(ty: &Type) -> bool {
    matches!(peel(ty), Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// Looks through invisible groups (from `macro_rules!`) and parentheses.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// The type arguments of `..::Name<..>`, if `ty` is a path ending in `Name` with type arguments only.
fn type_args<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(path) = peel(ty) else {
        return None;
    };
    let last = path.path.segments.last().filter(|_| path.qself.is_none())?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    if last.ident != name {
        return None;
    }
    args.args
        .iter()
        .map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect()
}

/// `Result<T, E>` as (whole, T, E).
fn result_parts(output: &ReturnType) -> Option<(Type, Type, Type)> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match type_args(ty, "Result")?.as_slice() {
        [ok, err] => Some(((**ty).clone(), (*ok).clone(), (*err).clone())),
        _ => None,
    }
}

/// `Subscription<T>` as (whole, T).
pub(super) fn subscription_item(output: &ReturnType) -> Option<(Type, Type)> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match type_args(ty, "Subscription")?.as_slice() {
        [item] => Some(((**ty).clone(), (*item).clone())),
        _ => None,
    }
}

/// A type that crosses the wire must be owned and concrete.
fn check_wire_type(ty: &Type, role: &str, errors: &mut Errors) {
    let message = match ty {
        Type::Reference(_) => format!(
            "{role} travel by value between processes: use an owned type (`String` for `&str`, \
             `Vec<T>` for `&[T]`)"
        ),
        Type::ImplTrait(_) => format!(
            "`impl Trait` is not a concrete type: name one ({role} are decoded as one concrete type)"
        ),
        Type::TraitObject(_) => format!(
            "a trait object cannot be decoded: use a concrete type (an enum for alternatives) for {role}"
        ),
        Type::Ptr(_) | Type::FnPtr(_) => {
            format!("{role} must be data, not pointers: use an owned type")
        }
        Type::Infer(_) => "write the type out: `_` cannot be decoded".to_owned(),
        Type::Group(group) => return check_wire_type(&group.elem, role, errors),
        Type::Paren(paren) => return check_wire_type(&paren.elem, role, errors),
        Type::Array(array) => return check_wire_type(&array.elem, role, errors),
        Type::Slice(slice) => return check_wire_type(&slice.elem, role, errors),
        Type::Tuple(tuple) => {
            return tuple
                .elems
                .iter()
                .for_each(|elem| check_wire_type(elem, role, errors));
        }
        Type::Path(path) => return check_path_type(path, role, errors),
        _ => return,
    };
    errors.push(syn::Error::new_spanned(ty, message));
}

fn check_path_type(path: &syn::TypePath, role: &str, errors: &mut Errors) {
    if let Some(qself) = &path.qself {
        check_wire_type(&qself.ty, role, errors);
    }
    for segment in &path.path.segments {
        if segment.ident == "Self" {
            errors.push(syn::Error::new_spanned(
                &segment.ident,
                "`Self` is the real client in one process and the generated client in another: name the type you mean",
            ));
        }
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            continue;
        };
        for arg in &args.args {
            match arg {
                GenericArgument::Type(ty) => check_wire_type(ty, role, errors),
                GenericArgument::AssocType(assoc) => check_wire_type(&assoc.ty, role, errors),
                GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                    errors.push(syn::Error::new_spanned(
                        lifetime,
                        format!(
                            "remove the lifetime `{lifetime}`: {role} travel by value between \
                             processes and own their data (`'static` is fine)"
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
}
