//! The seam between the runtime and the code `#[cluster_client]` generates.
//!
//! The leader side is one object-safe trait, [`Service`]: it turns a method name and encoded arguments
//! into an encoded [`Reply`], a stream of encoded subscription items, or nothing (oneway, publish).
//! The generated `Serve{Trait}` implements it over the user's real client with one `match` on the
//! method name. The follower side is [`Handle`](crate::handle::Handle), which sends those calls to
//! wherever the leader is and awaits replies. A [`Schema`] describes the trait to both.
//!
//! Everything here is public so the runtime can be driven by a hand-written service too (the tests do).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use crate::error::Error;
use crate::protocol::FaultCode;
use crate::protocol::args::Args;
use crate::transcode::{Codec, CodecError};

/// A subscription whose arguments decoded: what [`Service::subscribe`] returns.
pub struct Prepared {
    /// The subscription key of the decoded arguments (`$$inner$$__` and their canonical JSON).
    pub key: String,
    /// Subscribes the real client; called when no topic of this key runs yet, and again for a
    /// `#[subscribe(resubscribe)]` method whose stream ended with an error.
    pub start: Start,
}

/// Subscribes the real client: resolves once its subscribe returned, to its stream of encoded
/// items, or to the error it failed with ([`Error::Upstream`] for the method's own error).
pub type Start = Arc<dyn Fn() -> BoxFuture<Result<ItemStream, Error>> + Send + Sync>;

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A stream of encoded subscription items; an `Err` ends it with that error (the real client's own,
/// as [`Error::Upstream`], or another).
pub type ItemStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send + 'static>>;

/// What a method does on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// Request and response (`#[invoke]`).
    Invoke,
    /// Fire and forget (`#[oneway]`).
    Oneway,
    /// A stream of items from the leader (`#[subscribe]`).
    Subscribe,
    /// A oneway call the handle remembers and replays after a failover (`#[publish]`).
    Publish,
    /// Called on the real client when its leader shuts down (`#[close]`).
    Close,
}

impl MethodKind {
    /// The kind's attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MethodKind::Invoke => "invoke",
            MethodKind::Oneway => "oneway",
            MethodKind::Subscribe => "subscribe",
            MethodKind::Publish => "publish",
            MethodKind::Close => "close",
        }
    }
}

/// One method of a trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodSpec {
    /// The method's name.
    pub name: &'static str,
    /// What it does on the wire.
    pub kind: MethodKind,
    /// Its own deadline (`#[invoke(timeout_ms = ..)]`); `None` uses `Options::response_timeout`.
    pub timeout_ms: Option<u32>,
    /// Retried once on the new leader after a failover instead of failing (`#[invoke(idempotent)]`).
    pub idempotent: bool,
    /// For a subscription: deliver each item to every subscriber (`true`, the default) or to one
    /// chosen at random.
    pub broadcast: bool,
    /// For a subscription: when the real client's stream ends with an error, subscribe upstream
    /// again with backoff, and keep the subscribers' streams going (`#[subscribe(resubscribe)]`).
    pub resubscribe: bool,
}

impl MethodSpec {
    /// A method of `kind` with the defaults: no own deadline, not idempotent, broadcast.
    pub const fn new(name: &'static str, kind: MethodKind) -> Self {
        MethodSpec {
            name,
            kind,
            timeout_ms: None,
            idempotent: false,
            broadcast: true,
            resubscribe: false,
        }
    }
}

/// A trait as the runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The trait's name: the default channel name.
    pub name: &'static str,
    /// A hash of the method names, kinds, argument and result types. A leader refuses a follower
    /// whose fingerprint differs.
    pub fingerprint: u64,
    /// Every method.
    pub methods: &'static [MethodSpec],
}

impl Schema {
    /// The method of that name.
    pub fn method(&self, name: &str) -> Option<&'static MethodSpec> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The fingerprint as sent at registration: 16 lower-case hex digits.
    pub fn fingerprint_hex(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }
}

/// The encoded outcome of a call on the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The method's `Ok` value (empty for oneway and publish).
    Value(Bytes),
    /// The method's own `Err` value; it reaches the follower as the same type.
    Error(Bytes),
}

/// A call the leader could not hand to the real client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No method of that name, or none of the kind asked for.
    #[error("no {kind} method `{method}`")]
    UnknownMethod {
        /// The name asked for (cut to 64 characters).
        method: String,
        /// The kind asked for.
        kind: &'static str,
    },
    /// The arguments do not frame or decode as the method's parameters.
    #[error("arguments of `{method}` do not decode: {reason}")]
    BadArguments {
        /// The method.
        method: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The real client panicked while running the method.
    #[error("`{method}` panicked in the leader")]
    Panicked {
        /// The method.
        method: &'static str,
    },
    /// Too many calls in flight: the follower's, or the channel's.
    #[error("too many calls in flight (limit {limit})")]
    Overloaded {
        /// The configured cap.
        limit: usize,
    },
    /// The calls in flight on the channel hold too many bytes of arguments.
    #[error("the calls in flight hold too many bytes of arguments (limit {limit})")]
    OverloadedBytes {
        /// The configured cap, in bytes.
        limit: usize,
    },
    /// The subscription key a follower sent is not the key of the arguments it sent.
    #[error(
        "the key of a `{method}` subscription is not its arguments' ({sent} sent, {derived} derived)"
    )]
    KeyMismatch {
        /// The method.
        method: &'static str,
        /// The key sent, cut to 64 characters.
        sent: String,
        /// The key of the arguments, cut to 64 characters.
        derived: String,
    },
    /// A follower's subscription key is longer than `max_key_len`.
    #[error("the key of a `{method}` subscription has {len} bytes (limit {limit})")]
    KeyTooLong {
        /// The method.
        method: &'static str,
        /// The key's length.
        len: usize,
        /// The configured cap.
        limit: usize,
    },
    /// The leader runs as many topics as it may.
    #[error("too many topics (limit {limit})")]
    TooManyTopics {
        /// The configured cap.
        limit: usize,
    },
    /// The follower holds as many subscriptions as it may.
    #[error("too many subscriptions (limit {limit})")]
    TooManySubscriptions {
        /// The configured cap.
        limit: usize,
    },
    /// The result could not be encoded.
    #[error("result of `{method}` could not be encoded: {source}")]
    Encode {
        /// The method.
        method: &'static str,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
}

impl ServiceError {
    /// The machine-readable name sent as an `invoke_result`'s `fault`.
    pub fn fault(&self) -> FaultCode {
        match self {
            ServiceError::UnknownMethod { .. } => FaultCode::UnknownMethod,
            ServiceError::BadArguments { .. }
            | ServiceError::KeyMismatch { .. }
            | ServiceError::KeyTooLong { .. } => FaultCode::BadArguments,
            ServiceError::Encode { .. } => FaultCode::EncodeFailed,
            ServiceError::Panicked { .. } => FaultCode::Panicked,
            ServiceError::Overloaded { .. }
            | ServiceError::OverloadedBytes { .. }
            | ServiceError::TooManySubscriptions { .. }
            | ServiceError::TooManyTopics { .. } => FaultCode::Overloaded,
        }
    }

    /// An unknown method, with the name cut to 64 characters.
    pub fn unknown(method: &str, kind: MethodKind) -> Self {
        ServiceError::UnknownMethod {
            method: method.chars().take(64).collect(),
            kind: kind.as_str(),
        }
    }
}

/// The leader side of the seam: the real client behind a method-name dispatch.
///
/// Implemented by the generated `Serve{Trait}`; object safe, so the runtime holds an
/// `Arc<dyn Service>`.
pub trait Service: Send + Sync + 'static {
    /// The trait this service serves.
    fn schema(&self) -> &'static Schema;

    /// Runs an invoke, oneway or publish method.
    fn call(
        self: Arc<Self>,
        codec: Codec,
        method: &str,
        args: Args,
    ) -> BoxFuture<Result<Reply, ServiceError>>;

    /// Decodes a subscription's arguments (`app`, in the invoke-argument framing) and prepares it:
    /// the key the leader knows its topic by, derived from the decoded arguments, and how to
    /// subscribe the real client if the topic is new.
    fn subscribe(
        self: Arc<Self>,
        codec: Codec,
        method: &str,
        app: Bytes,
    ) -> Result<Prepared, ServiceError>;

    /// Closes the real client (its `#[close]` method, if it has one).
    fn close(self: Arc<Self>) -> BoxFuture<()>;
}
