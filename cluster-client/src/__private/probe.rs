//! Calls that type-check whatever a method's types are, so that a type that cannot cross the wire
//! is reported once, on the user's type, by the `assert_*` checks of the generated code.
//!
//! Every generated body calls its helper through a [`Probe`] of the method's types. When the types
//! meet the helper's bounds, the call resolves to the helper; otherwise to a stand-in that never
//! runs: the crate does not compile then, since an assertion on the user's type has failed, and the
//! body adds no second error at the attribute. Method resolution tries the receiver by value before
//! it borrows it, so a helper on `Probe` is preferred to a stand-in on `&Probe` whenever its bounds
//! hold; for the concrete types of generated code that is decided at compile time.
//!
//! Each helper's bounds are implied by the assertions' (`Wire`, `WireError`, `SubscribeError`), so
//! a stand-in is never chosen in a crate that compiles.

use std::fmt::Display;
use std::future::{Future, Pending};
use std::marker::PhantomData;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Args, BoxFuture, Codec, DecodeArgs, EncodeArgs, Handle, MethodSpec, Prepared, Reply};
use crate::error::Error;
use crate::service::ServiceError;
use crate::subscription::Subscription;

/// A method's types: its arguments (a tuple), its value (a result's `Ok`, an item) and its error
/// (`()` where it has none).
pub struct Probe<A, T, E>(PhantomData<Types<A, T, E>>);

/// The probe's types, without owning any value of them.
type Types<A, T, E> = fn() -> (A, T, E);

impl<A, T, E> Probe<A, T, E> {
    /// The probe.
    pub const NEW: Self = Probe(PhantomData);
}

/// What a stand-in does if it ever runs: it cannot, as its crate does not compile.
const STAND_IN: &str =
    "a stand-in of cluster-client's generated code ran: this is a bug of cluster-client";

/// `#[invoke]`, and an `async` `#[subscribe]`, on the client.
pub trait Invokes<A, T, E> {
    /// [`super::invoke`].
    fn invoke(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = Result<T, E>> + Send;

    /// [`super::subscribe_live`].
    fn subscribe_live(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = Result<Subscription<T>, E>> + Send;
}

impl<A, T, E> Invokes<A, T, E> for Probe<A, T, E>
where
    A: EncodeArgs + Send,
    T: DeserializeOwned + Send,
    E: DeserializeOwned + From<Error> + Send,
{
    fn invoke(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = Result<T, E>> + Send {
        super::invoke(handle, spec, args)
    }

    fn subscribe_live(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = Result<Subscription<T>, E>> + Send {
        super::subscribe_live(handle, spec, args)
    }
}

/// Stands in for [`Invokes`].
pub trait InvokesOtherwise<A, T, E> {
    /// Stands in for [`super::invoke`].
    fn invoke(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Pending<Result<T, E>>;

    /// Stands in for [`super::subscribe_live`].
    fn subscribe_live(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> Pending<Result<Subscription<T>, E>>;
}

impl<A, T, E> InvokesOtherwise<A, T, E> for &Probe<A, T, E> {
    fn invoke(self, _: &Handle, _: &'static MethodSpec, _: A) -> Pending<Result<T, E>> {
        unreachable!("{STAND_IN}")
    }

    fn subscribe_live(
        self,
        _: &Handle,
        _: &'static MethodSpec,
        _: A,
    ) -> Pending<Result<Subscription<T>, E>> {
        unreachable!("{STAND_IN}")
    }
}

/// `#[oneway]` and `#[publish]` on the client.
pub trait Sends<A> {
    /// [`super::oneway`].
    fn oneway(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = ()> + Send;

    /// [`super::publish`].
    fn publish(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = ()> + Send;
}

impl<A: EncodeArgs + Send> Sends<A> for Probe<A, (), ()> {
    fn oneway(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = ()> + Send {
        super::oneway(handle, spec, args)
    }

    fn publish(
        self,
        handle: &Handle,
        spec: &'static MethodSpec,
        args: A,
    ) -> impl Future<Output = ()> + Send {
        super::publish(handle, spec, args)
    }
}

/// Stands in for [`Sends`].
pub trait SendsOtherwise<A> {
    /// Stands in for [`super::oneway`].
    fn oneway(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Pending<()>;

    /// Stands in for [`super::publish`].
    fn publish(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Pending<()>;
}

impl<A> SendsOtherwise<A> for &Probe<A, (), ()> {
    fn oneway(self, _: &Handle, _: &'static MethodSpec, _: A) -> Pending<()> {
        unreachable!("{STAND_IN}")
    }

    fn publish(self, _: &Handle, _: &'static MethodSpec, _: A) -> Pending<()> {
        unreachable!("{STAND_IN}")
    }
}

/// A plain `#[subscribe]` on the client.
pub trait Subscribes<A, T> {
    /// [`super::subscribe`].
    fn subscribe(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Subscription<T>;
}

impl<A: EncodeArgs, T: DeserializeOwned> Subscribes<A, T> for Probe<A, T, ()> {
    fn subscribe(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Subscription<T> {
        super::subscribe(handle, spec, args)
    }
}

/// Stands in for [`Subscribes`].
pub trait SubscribesOtherwise<A, T> {
    /// Stands in for [`super::subscribe`].
    fn subscribe(self, handle: &Handle, spec: &'static MethodSpec, args: A) -> Subscription<T>;
}

impl<A, T> SubscribesOtherwise<A, T> for &Probe<A, T, ()> {
    fn subscribe(self, _: &Handle, _: &'static MethodSpec, _: A) -> Subscription<T> {
        unreachable!("{STAND_IN}")
    }
}

/// The leader's dispatch of `#[invoke]`, `#[oneway]` and `#[publish]`.
pub trait Serves<A, T, E> {
    /// [`super::serve_invoke`].
    fn serve_invoke<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static;
}

impl<A: DecodeArgs, T: Serialize, E: Serialize> Serves<A, T, E> for Probe<A, T, E> {
    fn serve_invoke<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        super::serve_invoke(codec, method, args, call)
    }
}

/// Stands in for [`Serves`].
pub trait ServesOtherwise<A, T, E> {
    /// Stands in for [`super::serve_invoke`].
    fn serve_invoke<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Result<T, E>>;
}

impl<A, T, E> ServesOtherwise<A, T, E> for &Probe<A, T, E> {
    fn serve_invoke<F, Fut>(
        self,
        _: Codec,
        _: &'static str,
        _: Args,
        _: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        unreachable!("{STAND_IN}")
    }
}

/// The leader's dispatch of `#[oneway]` and `#[publish]`.
pub trait ServesOneway<A> {
    /// [`super::serve_oneway`].
    fn serve_oneway<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = ()> + Send + 'static;
}

impl<A: DecodeArgs> ServesOneway<A> for Probe<A, (), ()> {
    fn serve_oneway<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        super::serve_oneway(codec, method, args, call)
    }
}

/// Stands in for [`ServesOneway`].
pub trait ServesOnewayOtherwise<A> {
    /// Stands in for [`super::serve_oneway`].
    fn serve_oneway<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        args: Args,
        call: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = ()>;
}

impl<A> ServesOnewayOtherwise<A> for &Probe<A, (), ()> {
    fn serve_oneway<F, Fut>(
        self,
        _: Codec,
        _: &'static str,
        _: Args,
        _: F,
    ) -> BoxFuture<Result<Reply, ServiceError>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = ()>,
    {
        unreachable!("{STAND_IN}")
    }
}

/// The leader's dispatch of a plain `#[subscribe]`.
pub trait ServesSubscribe<A, T> {
    /// [`super::serve_subscribe`].
    fn serve_subscribe<F>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Subscription<T> + Send + Sync + 'static;
}

impl<A, T> ServesSubscribe<A, T> for Probe<A, T, ()>
where
    A: DecodeArgs + EncodeArgs + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn serve_subscribe<F>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Subscription<T> + Send + Sync + 'static,
    {
        super::serve_subscribe(codec, method, app, call)
    }
}

/// Stands in for [`ServesSubscribe`].
pub trait ServesSubscribeOtherwise<A, T> {
    /// Stands in for [`super::serve_subscribe`].
    fn serve_subscribe<F>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Subscription<T>;
}

impl<A, T> ServesSubscribeOtherwise<A, T> for &Probe<A, T, ()> {
    fn serve_subscribe<F>(
        self,
        _: Codec,
        _: &'static str,
        _: Bytes,
        _: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Subscription<T>,
    {
        unreachable!("{STAND_IN}")
    }
}

/// The leader's dispatch of an `async` `#[subscribe]`.
pub trait ServesSubscribeAsync<A, T, E> {
    /// [`super::serve_subscribe_async`].
    fn serve_subscribe_async<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Subscription<T>, E>> + Send + 'static;
}

impl<A, T, E> ServesSubscribeAsync<A, T, E> for Probe<A, T, E>
where
    A: DecodeArgs + EncodeArgs + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + Display + Send + Sync + 'static,
{
    fn serve_subscribe_async<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Subscription<T>, E>> + Send + 'static,
    {
        super::serve_subscribe_async(codec, method, app, call)
    }
}

/// Stands in for [`ServesSubscribeAsync`].
pub trait ServesSubscribeAsyncOtherwise<A, T, E> {
    /// Stands in for [`super::serve_subscribe_async`].
    fn serve_subscribe_async<F, Fut>(
        self,
        codec: Codec,
        method: &'static str,
        app: Bytes,
        call: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Fut,
        Fut: Future<Output = Result<Subscription<T>, E>>;
}

impl<A, T, E> ServesSubscribeAsyncOtherwise<A, T, E> for &Probe<A, T, E> {
    fn serve_subscribe_async<F, Fut>(
        self,
        _: Codec,
        _: &'static str,
        _: Bytes,
        _: F,
    ) -> Result<Prepared, ServiceError>
    where
        F: Fn(A) -> Fut,
        Fut: Future<Output = Result<Subscription<T>, E>>,
    {
        unreachable!("{STAND_IN}")
    }
}
