//! What generated code calls. Not a public API: names here change without notice.
//!
//! Every generated method body is one call into this module, so the expansion stays small and the
//! logic lives (and is tested) here. A client method passes its own `&'static MethodSpec` (an entry of
//! its `SCHEMA`), so no call looks its method up by name.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::arguments::{DecodeArgs, EncodeArgs};
pub use crate::handle::Handle;
pub use crate::protocol::args::Args;
pub use crate::service::{
    BoxFuture, ItemStream, MethodKind, MethodSpec, Prepared, Reply, Schema, Service, ServiceError,
};
pub use crate::transcode::Codec;
pub use bytes;
pub use serde;

use crate::error::Error;
use crate::io::scratch;
use crate::options::Options;
use crate::subscription::Subscription;
use crate::transcode::Transcode;

mod probe;
pub use probe::{
    Invokes, InvokesOtherwise, Probe, Sends, SendsOtherwise, Serves, ServesOneway,
    ServesOnewayOtherwise, ServesOtherwise, ServesSubscribe, ServesSubscribeAsync,
    ServesSubscribeAsyncOtherwise, ServesSubscribeOtherwise, Subscribes, SubscribesOtherwise,
};

/// Runs the election and returns the handle; `factory` builds the real client for the leader's
/// [`Term`](crate::Term) wherever this process becomes leader (now, or after a failover).
pub async fn create_with<F, Fut, S, E>(
    options: Options,
    schema: &'static Schema,
    factory: F,
) -> Result<Handle, Error>
where
    F: Fn(crate::Term) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<S, E>> + Send + 'static,
    S: Service,
    E: Display,
{
    let factory = Arc::new(factory);
    let boxed: crate::election::Factory = Arc::new(move |term| {
        let fut = factory(term);
        Box::pin(async move {
            fut.await
                .map(|service| Arc::new(service) as Arc<dyn Service>)
                .map_err(|e| e.to_string())
        })
    });
    Handle::create(options, schema, boxed).await
}

/// Arguments that are kept (a publish to repeat, a subscription to renew), in their own buffer.
fn encode_args<A: EncodeArgs>(codec: Codec, args: &A) -> Result<Bytes, Error> {
    let mut app = BytesMut::new();
    args.encode(codec, &mut app)?;
    Ok(app.freeze())
}

/// Arguments sent once, in the thread's scratch buffer.
fn encode_call_args<A: EncodeArgs>(codec: Codec, args: &A) -> Result<Bytes, Error> {
    Ok(scratch::encode(|app| args.encode(codec, app))?)
}

/// An `#[invoke]` method of a handle.
pub async fn invoke<A, T, E>(handle: &Handle, spec: &'static MethodSpec, args: A) -> Result<T, E>
where
    A: EncodeArgs,
    T: DeserializeOwned,
    E: DeserializeOwned + From<Error>,
{
    let codec = handle.codec();
    let app = encode_call_args(codec, &args)?;
    match handle.call(spec, A::ARITY, app).await? {
        Reply::Value(bytes) => codec.decode(&bytes).map_err(|e| E::from(e.into())),
        Reply::Error(bytes) => Err(codec.decode(&bytes).map_err(|e| E::from(e.into()))?),
    }
}

/// A `#[oneway]` method of a handle: a failure to send is logged, as nobody awaits an answer.
pub async fn oneway<A: EncodeArgs>(handle: &Handle, spec: &'static MethodSpec, args: A) {
    let result = match encode_call_args(handle.codec(), &args) {
        Ok(app) => handle.call(spec, A::ARITY, app).await.map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        tracing::warn!(method = spec.name, error = %err, "oneway call failed");
    }
}

/// A `#[publish]` method of a handle: sent like a oneway call, and remembered (the latest per
/// argument) to be published again after a failover.
pub async fn publish<A: EncodeArgs>(handle: &Handle, spec: &'static MethodSpec, args: A) {
    let prepared = encode_args(handle.codec(), &args)
        .and_then(|app| Ok((args.canonical_json().map_err(json_error)?, app)));
    let result = match prepared {
        Ok((key, app)) => handle.publish(spec, key, A::ARITY, app).await,
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        tracing::warn!(method = spec.name, error = %err, "publish failed");
    }
}

/// A `#[subscribe]` method of a handle.
pub fn subscribe<A, T>(handle: &Handle, spec: &'static MethodSpec, args: A) -> Subscription<T>
where
    A: EncodeArgs,
    T: DeserializeOwned,
{
    let prepared = encode_args(handle.codec(), &args)
        .and_then(|app| Ok((args.canonical_json().map_err(json_error)?, app)));
    match prepared {
        Ok((reg, app)) => handle.subscribe(spec, reg, app),
        Err(err) => Subscription::failed(err),
    }
}

/// The `#[close]` method of a handle: closes the handle.
pub async fn close(handle: &Handle) {
    handle.close().await;
}

fn json_error(err: serde_json::Error) -> Error {
    Error::Codec(crate::transcode::CodecError::Encode {
        codec: "json (subscription key)",
        message: err.to_string(),
    })
}

fn bad_args(method: &'static str, err: crate::arguments::ArgsError) -> ServiceError {
    ServiceError::BadArguments {
        method,
        reason: err.to_string(),
    }
}

/// Leader side of an `#[invoke]` method: decodes the arguments, runs `call`, encodes its result.
pub fn serve_invoke<A, T, E, F, Fut>(
    codec: Codec,
    method: &'static str,
    args: Args,
    call: F,
) -> BoxFuture<Result<Reply, ServiceError>>
where
    A: DecodeArgs,
    T: Serialize,
    E: Serialize,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let fut = match A::decode(codec, args) {
        Ok(args) => call(args),
        Err(err) => return Box::pin(std::future::ready(Err(bad_args(method, err)))),
    };
    Box::pin(async move {
        let reply = match fut.await {
            Ok(value) => scratch::encode(|out| codec.encode(&value, out)).map(Reply::Value),
            Err(error) => scratch::encode(|out| codec.encode(&error, out)).map(Reply::Error),
        };
        reply.map_err(|source| ServiceError::Encode { method, source })
    })
}

/// Leader side of a `#[oneway]` or `#[publish]` method.
pub fn serve_oneway<A, F, Fut>(
    codec: Codec,
    method: &'static str,
    args: Args,
    call: F,
) -> BoxFuture<Result<Reply, ServiceError>>
where
    A: DecodeArgs,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match A::decode(codec, args) {
        Ok(args) => {
            let fut = call(args);
            Box::pin(async move {
                fut.await;
                Ok(Reply::Value(Bytes::new()))
            })
        }
        Err(err) => Box::pin(std::future::ready(Err(bad_args(method, err)))),
    }
}

/// Leader side of a `#[subscribe]` method that returns `Subscription<T>`: decodes the arguments,
/// derives the subscription key from them, and on `start` subscribes the real client and encodes
/// every item.
pub fn serve_subscribe<A, T, F>(
    codec: Codec,
    method: &'static str,
    app: Bytes,
    call: F,
) -> Result<Prepared, ServiceError>
where
    A: DecodeArgs + EncodeArgs + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(A) -> Subscription<T> + Send + Sync + 'static,
{
    prepare_subscription(codec, method, app, move |args| {
        let subscription = call(args);
        Box::pin(std::future::ready(Ok(subscription)))
    })
}

/// Leader side of an `async` `#[subscribe]` method that returns `Result<Subscription<T>, E>`: as
/// [`serve_subscribe`], and an `Err` fails the subscription with the method's own error.
pub fn serve_subscribe_async<A, T, E, F, Fut>(
    codec: Codec,
    method: &'static str,
    app: Bytes,
    call: F,
) -> Result<Prepared, ServiceError>
where
    A: DecodeArgs + EncodeArgs + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + Display + Send + Sync + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Subscription<T>, E>> + Send + 'static,
{
    prepare_subscription(codec, method, app, move |args| {
        let subscribing = call(args);
        Box::pin(async move { subscribing.await.map_err(Error::upstream) })
    })
}

/// Decodes a subscription's arguments and derives its key; its start decodes them again (it may
/// run more than once) and opens the real client's subscription with `open`.
fn prepare_subscription<A, T, F>(
    codec: Codec,
    method: &'static str,
    app: Bytes,
    open: F,
) -> Result<Prepared, ServiceError>
where
    A: DecodeArgs + EncodeArgs + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(A) -> BoxFuture<Result<Subscription<T>, Error>> + Send + Sync + 'static,
{
    let args = A::decode_app(codec, app.clone()).map_err(|err| bad_args(method, err))?;
    let reg = args
        .canonical_json()
        .map_err(|err| ServiceError::BadArguments {
            method,
            reason: format!("no canonical JSON: {err}"),
        })?;
    // The topic keeps the arguments as long as it lives: their own bytes, not a slice that would
    // keep the whole frame they came in (a follower could pad it to the frame limit).
    let app = Bytes::copy_from_slice(&app);
    let start = move || -> BoxFuture<Result<ItemStream, Error>> {
        let opening = match A::decode_app(codec, app.clone()) {
            Ok(args) => open(args),
            Err(err) => {
                let err = bad_args(method, err);
                return Box::pin(std::future::ready(Err(Error::Remote {
                    name: err.fault(),
                    message: err.to_string(),
                })));
            }
        };
        Box::pin(async move {
            let items = opening.await?.started().await?;
            Ok(item_stream(codec, method, items))
        })
    };
    Ok(Prepared {
        key: crate::protocol::subscription_key(&reg),
        start: Arc::new(start),
    })
}

/// The encoded items of a real client's subscription, and the error that ends them.
fn item_stream<T: Serialize + Send + 'static>(
    codec: Codec,
    method: &'static str,
    items: futures::stream::BoxStream<'static, Result<T, Error>>,
) -> ItemStream {
    let items = items.filter_map(move |item| {
        let encoded = match item {
            Ok(item) => {
                let mut out = BytesMut::new();
                match codec.encode(&item, &mut out) {
                    Ok(()) => Some(Ok(out.freeze())),
                    Err(err) => {
                        tracing::warn!(method, error = %err, "subscription item could not be encoded; skipped");
                        None
                    }
                }
            }
            Err(error) => Some(Err(error)),
        };
        std::future::ready(encoded)
    });
    Box::pin(items)
}

/// A `#[subscribe]` method of a handle declared `async fn … -> Result<Subscription<T>, E>`:
/// subscribes, and resolves once the subscription is live upstream (within the method's
/// deadline), or fails with the method's own error.
pub async fn subscribe_live<A, T, E>(
    handle: &Handle,
    spec: &'static MethodSpec,
    args: A,
) -> Result<Subscription<T>, E>
where
    A: EncodeArgs,
    T: DeserializeOwned,
    E: DeserializeOwned + From<Error>,
{
    let mut subscription = subscribe(handle, spec, args);
    let deadline = handle.deadline_of(spec);
    match tokio::time::timeout(deadline, subscription.ready()).await {
        Ok(Ok(())) => Ok(subscription),
        Ok(Err(error)) => Err(error.into_method_error()),
        Err(_) => Err(E::from(Error::timeout(spec.name, deadline))),
    }
}

/// A type that can cross the wire: `Serialize + DeserializeOwned`. Its own name, so that an unmet
/// bound says what to do.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the wire: a `#[cluster_client]` method's arguments, results and items must be `Serialize + Deserialize + Send`",
    label = "not `Serialize + Deserialize + Send`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or for the types inside it (`T` of `Vec<T>`, `Option<T>`, …); for a type of another crate, wrap it in a type of your own that does (or enable that crate's `serde` feature)"
)]
pub trait Wire {}

// The unmet bound is reported as this trait's, with its message, not as the first one
// this impl needs.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// An invoke's error type: it crosses the wire and carries the runtime's failures.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of a `#[cluster_client]` invoke: it must be `Serialize + Deserialize` and `From<cluster_client::Error>`",
    label = "not `Serialize + Deserialize + From<cluster_client::Error>`",
    note = "wrap it in an error type of your own, e.g. `enum MyError {{ Upstream(String), Cluster {{ kind: cluster_client::ErrorKind, message: String }} }}`, deriving `Serialize` and `Deserialize`, with `From<cluster_client::Error>` (and `From` the upstream's error)"
)]
pub trait WireError {}

// The unmet bound is reported as this trait's, with its message, not as the first one
// this impl needs.
#[diagnostic::do_not_recommend]
impl<E: Serialize + DeserializeOwned + Send + 'static + From<Error>> WireError for E {}

/// Asserts at compile time that a parameter or result type can cross the wire.
pub const fn assert_wire<T: Wire>() {}

/// Asserts at compile time that an invoke's error type can carry transport failures and cross the wire.
pub const fn assert_error<E: WireError>() {}

/// The error of an `async` `#[subscribe]`: it crosses the wire, carries the runtime's failures, and
/// has a text for the subscribers' logs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error of an `async` `#[subscribe]`: it must be `Serialize + Deserialize + Display + Send + Sync` and `From<cluster_client::Error>`",
    label = "not `Serialize + Deserialize + Display + Send + Sync + From<cluster_client::Error>`",
    note = "wrap it in an error type of your own deriving `Serialize`, `Deserialize` and `thiserror::Error`, with `From<cluster_client::Error>`"
)]
pub trait SubscribeError {}

// The unmet bound is reported as this trait's, with its message, not as the first one
// this impl needs.
#[diagnostic::do_not_recommend]
impl<E> SubscribeError for E where
    E: Serialize + DeserializeOwned + From<Error> + Display + Send + Sync + 'static
{
}

/// Asserts at compile time that an `async` subscribe's error type can end a subscription.
pub const fn assert_subscribe_error<E: SubscribeError>() {}
