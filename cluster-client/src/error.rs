//! [`Error`]: every way a call, a subscription or `create()` can fail.

use crate::auth::AuthError;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::protocol::{FaultCode, ProtocolError, RefusalCode};
use crate::transcode::{Codec, CodecError, Transcode};

/// A failure of the cluster runtime (not of the real client's own methods, whose error values cross
/// the wire as their own type).
///
/// An invoke method's error type must implement `From<Error>`, so transport failures reach the caller
/// through the method's own `Result`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No answer came within the call's deadline.
    #[error("`{method}` got no answer within {ms} ms")]
    Timeout {
        /// The method called.
        method: String,
        /// The deadline in milliseconds.
        ms: u64,
    },
    /// The connection to the leader broke while the call was in flight; its outcome is unknown.
    #[error("the leader was lost while `{method}` was in flight")]
    LeaderLost {
        /// The method called.
        method: String,
    },
    /// The handle was closed.
    #[error("the cluster client is closed")]
    Closed,
    /// Leader-only role, but another process (or another handle of this channel) holds the port.
    #[error("port {port} is already taken: cannot be leader of channel `{channel}`")]
    PortTaken {
        /// The port.
        port: u16,
        /// The channel.
        channel: String,
    },
    /// No leader could be reached: follower-only with none in time, or, during a failover, a port
    /// held by a leader that does not answer (frozen, or stopping).
    #[error("no leader of channel `{channel}` on port {port} within {waited_ms} ms: {reason}")]
    NoLeader {
        /// The port.
        port: u16,
        /// The channel.
        channel: String,
        /// How long the handle waited.
        waited_ms: u64,
        /// What was found instead.
        reason: String,
    },
    /// Something that does not speak this protocol holds the port.
    #[error("port {port} is held by a process that is not a cluster-client leader: {found}")]
    ForeignPeer {
        /// The port.
        port: u16,
        /// What was found there.
        found: String,
    },
    /// The leader was built from a different trait definition.
    #[error(
        "schema mismatch on channel `{channel}`: this process has {ours}, the leader has {theirs}"
    )]
    SchemaMismatch {
        /// The channel.
        channel: String,
        /// This process's fingerprint.
        ours: String,
        /// The leader's fingerprint.
        theirs: String,
    },
    /// The leader refused the registration for another reason (its real client failed to start, a
    /// codec mismatch, a connection cap).
    #[error("the leader of channel `{channel}` refused this follower ({code}): {message}")]
    Refused {
        /// The channel.
        channel: String,
        /// A machine-readable reason: `factory_failed`, `codec_mismatch`, `too_many_connections`, …
        code: RefusalCode,
        /// The leader's message.
        message: String,
    },
    /// The factory that builds the real client failed in this process.
    #[error("the real client of channel `{channel}` could not be built: {message}")]
    Factory {
        /// The channel.
        channel: String,
        /// The factory's error, as text.
        message: String,
    },
    /// The leader failed the call for a reason of the runtime's (unknown method, arguments that did
    /// not decode, a cap), not with the method's own error value.
    #[error("the leader failed the call ({name}): {message}")]
    Remote {
        /// A machine-readable name: `unknown_method`, `bad_arguments`, `overloaded`, `panicked`, …
        name: FaultCode,
        /// The leader's message.
        message: String,
    },
    /// A subscription ended because its consumer fell behind and the policy is to close.
    #[error(
        "subscription to `{method}` closed: the consumer fell behind ({capacity} items or {max_bytes} bytes buffered)"
    )]
    Lagged {
        /// The subscribe method.
        method: String,
        /// The buffer's capacity in items.
        capacity: usize,
        /// The buffer's capacity in bytes.
        max_bytes: usize,
    },
    /// No first item arrived within `subscribe_timeout`.
    #[error("subscription to `{method}` got no first item within {ms} ms")]
    SubscribeTimeout {
        /// The subscribe method.
        method: String,
        /// The configured timeout.
        ms: u64,
    },
    /// The leader's real client ended the subscription.
    #[error("subscription to `{method}` ended by the leader: {reason}")]
    SubscriptionEnded {
        /// The subscribe method.
        method: String,
        /// Why.
        reason: String,
    },
    /// The real client failed a subscription with its own error: its subscribe failed, or its
    /// stream ended with an error. [`Subscription::error`](crate::Subscription::error) gives the
    /// error as the method's own type.
    #[error("the real client failed the subscription: {message}")]
    Upstream {
        /// The error's text (its `Display`).
        message: String,
        /// The error's value, as the real client's method returned it.
        value: Encoded,
    },
    /// A frame broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(Arc<ProtocolError>),
    /// A value could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The cluster secret could not be read or created, or its file is not private; the message
    /// says how to fix it.
    #[error(transparent)]
    Auth(Arc<AuthError>),
    /// A socket failed.
    #[error("i/o error: {0}")]
    Io(Arc<std::io::Error>),
}

impl Error {
    /// A call of `method` that got no answer within `deadline`.
    pub(crate) fn timeout(method: &str, deadline: std::time::Duration) -> Error {
        Error::Timeout {
            method: method.to_owned(),
            ms: deadline.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }

    /// What kind of failure this is: a value that can be matched, stored and sent (it is
    /// `Serialize + Deserialize`), so that a method's own error type can keep it across the wire
    /// (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::LeaderLost { .. } => ErrorKind::LeaderLost,
            Error::Closed => ErrorKind::Closed,
            Error::PortTaken { .. } => ErrorKind::PortTaken,
            Error::NoLeader { .. } => ErrorKind::NoLeader,
            Error::ForeignPeer { .. } => ErrorKind::ForeignPeer,
            Error::SchemaMismatch { .. } => ErrorKind::SchemaMismatch,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::Factory { .. } => ErrorKind::Factory,
            Error::Remote { .. } => ErrorKind::Remote,
            Error::Lagged { .. } => ErrorKind::Lagged,
            Error::SubscribeTimeout { .. } => ErrorKind::SubscribeTimeout,
            Error::SubscriptionEnded { .. } => ErrorKind::SubscriptionEnded,
            Error::Upstream { .. } => ErrorKind::Upstream,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Codec(_) => ErrorKind::Codec,
            Error::Io(_) => ErrorKind::Io,
            Error::Auth(_) => ErrorKind::Auth,
        }
    }

    /// Whether the call may have run on the real client although it failed here: its answer was
    /// lost with the leader while the call was on the wire, or did not come within the deadline.
    /// Such a call may be retried only if running it twice is harmless.
    pub fn outcome_unknown(&self) -> bool {
        self.kind().outcome_unknown()
    }
}

/// The kinds of [`Error`], by their stable names (`Display`, `FromStr` and serde all use them):
///
/// | name | meaning | outcome unknown |
/// | --- | --- | --- |
/// | `timeout` | no answer within the call's deadline | yes |
/// | `leader_lost` | the leader went away while the call was on the wire | yes |
/// | `closed` | this handle was closed | |
/// | `port_taken` | `Role::Leader` was asked, and the port is another's | |
/// | `no_leader` | no leader could be reached within the wait | |
/// | `foreign_peer` | something that is no leader of this cluster holds the port | |
/// | `schema_mismatch` | the leader's trait is another | |
/// | `refused` | the leader refused this process (codec, cap, secret…) | |
/// | `factory` | the real client could not be built | |
/// | `remote` | the leader's runtime failed the call (unknown method, bad arguments, overload, a panic) | |
/// | `lagged` | a subscription fell behind and items were dropped | |
/// | `subscribe_timeout` | a subscription got no first item in time | |
/// | `subscription_ended` | the real client ended the subscription | |
/// | `upstream` | the real client failed the subscription with its own error | |
/// | `protocol` | a peer broke the wire protocol | |
/// | `codec` | a value could not be encoded or decoded | |
/// | `io` | a socket failed | |
/// | `auth` | the cluster secret could not be read or made | |
///
/// A method's error type keeps the kind of a transport failure in its `From<Error>`:
///
/// ```
/// use cluster_client::{Error, ErrorKind};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// enum MyError {
///     Cluster { kind: ErrorKind, message: String },
/// }
///
/// impl From<Error> for MyError {
///     fn from(err: Error) -> Self {
///         MyError::Cluster { kind: err.kind(), message: err.to_string() }
///     }
/// }
///
/// let err = MyError::from(Error::LeaderLost { method: "incr".into() });
/// let MyError::Cluster { kind, .. } = err;
/// assert!(kind.outcome_unknown());
/// assert_eq!(kind.to_string(), "leader_lost");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::LeaderLost`].
    LeaderLost,
    /// [`Error::Closed`].
    Closed,
    /// [`Error::PortTaken`].
    PortTaken,
    /// [`Error::NoLeader`].
    NoLeader,
    /// [`Error::ForeignPeer`].
    ForeignPeer,
    /// [`Error::SchemaMismatch`].
    SchemaMismatch,
    /// [`Error::Refused`].
    Refused,
    /// [`Error::Factory`].
    Factory,
    /// [`Error::Remote`].
    Remote,
    /// [`Error::Lagged`].
    Lagged,
    /// [`Error::SubscribeTimeout`].
    SubscribeTimeout,
    /// [`Error::SubscriptionEnded`].
    SubscriptionEnded,
    /// [`Error::Upstream`].
    Upstream,
    /// [`Error::Protocol`].
    Protocol,
    /// [`Error::Codec`].
    Codec,
    /// [`Error::Io`].
    Io,
    /// [`Error::Auth`].
    Auth,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::Timeout,
        ErrorKind::LeaderLost,
        ErrorKind::Closed,
        ErrorKind::PortTaken,
        ErrorKind::NoLeader,
        ErrorKind::ForeignPeer,
        ErrorKind::SchemaMismatch,
        ErrorKind::Refused,
        ErrorKind::Factory,
        ErrorKind::Remote,
        ErrorKind::Lagged,
        ErrorKind::SubscribeTimeout,
        ErrorKind::SubscriptionEnded,
        ErrorKind::Upstream,
        ErrorKind::Protocol,
        ErrorKind::Codec,
        ErrorKind::Io,
        ErrorKind::Auth,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::LeaderLost => "leader_lost",
            ErrorKind::Closed => "closed",
            ErrorKind::PortTaken => "port_taken",
            ErrorKind::NoLeader => "no_leader",
            ErrorKind::ForeignPeer => "foreign_peer",
            ErrorKind::SchemaMismatch => "schema_mismatch",
            ErrorKind::Refused => "refused",
            ErrorKind::Factory => "factory",
            ErrorKind::Remote => "remote",
            ErrorKind::Lagged => "lagged",
            ErrorKind::SubscribeTimeout => "subscribe_timeout",
            ErrorKind::SubscriptionEnded => "subscription_ended",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Codec => "codec",
            ErrorKind::Io => "io",
            ErrorKind::Auth => "auth",
        }
    }

    /// Whether a call that failed with this kind may have run on the real client (`timeout`,
    /// `leader_lost`).
    pub fn outcome_unknown(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::LeaderLost)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`ErrorKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not the name of an error kind")]
pub struct UnknownErrorKind(pub String);

impl std::str::FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownErrorKind(name.to_owned()))
    }
}

/// A value of the real client's own error type: what [`Error::Upstream`] carries across the wire,
/// to be read back as that type. Held as the value itself in the process that raised it, and as
/// bytes in a codec in the processes it reached.
#[derive(Clone)]
pub struct Encoded(Repr);

#[derive(Clone)]
enum Repr {
    Bytes { codec: Codec, bytes: Bytes },
    Value(Arc<dyn Fn(Codec) -> Result<Bytes, CodecError> + Send + Sync>),
}

impl Encoded {
    /// `bytes`, a value encoded with `codec`.
    pub fn new(codec: Codec, bytes: Bytes) -> Self {
        Encoded(Repr::Bytes { codec, bytes })
    }

    /// `value`, to be encoded in whichever codec it crosses the wire in.
    pub fn of<E: serde::Serialize + Send + Sync + 'static>(value: E) -> Self {
        Encoded(Repr::Value(Arc::new(move |codec: Codec| {
            let mut out = bytes::BytesMut::new();
            codec.encode(&value, &mut out)?;
            Ok(out.freeze())
        })))
    }

    /// The value, read as `E`.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, CodecError> {
        match &self.0 {
            Repr::Bytes { codec, bytes } => codec.decode(bytes),
            // JSON describes itself: any serde type reads back from it.
            Repr::Value(_) => Codec::Json.decode(&self.encode(Codec::Json)?),
        }
    }

    /// The value in `codec`: what is sent to a follower.
    pub fn encode(&self, codec: Codec) -> Result<Bytes, CodecError> {
        match &self.0 {
            Repr::Bytes { codec: own, bytes } if *own == codec => Ok(bytes.clone()),
            Repr::Bytes { codec: own, .. } => Err(CodecError::Encode {
                codec: codec.name(),
                message: format!("the value is in {own} and cannot be read without its type"),
            }),
            Repr::Value(encode) => encode(codec),
        }
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Bytes { codec, bytes } => f
                .debug_struct("Encoded")
                .field("codec", codec)
                .field("len", &bytes.len())
                .finish(),
            Repr::Value(_) => f.write_str("Encoded(value)"),
        }
    }
}

impl Error {
    /// The real client's own error `error`, ending a subscription (see [`Error::Upstream`]).
    pub fn upstream<E>(error: E) -> Self
    where
        E: serde::Serialize + std::fmt::Display + Send + Sync + 'static,
    {
        Error::Upstream {
            message: error.to_string(),
            value: Encoded::of(error),
        }
    }

    /// This error as a method's own error type `E`: the real client's own error read back (see
    /// [`Error::Upstream`]), or, for any other failure (or one that does not read as `E`),
    /// `E::from(self)`.
    pub fn into_method_error<E: DeserializeOwned + From<Error>>(self) -> E {
        if let Error::Upstream { value, .. } = &self {
            if let Ok(own) = value.decode() {
                return own;
            }
        }
        E::from(self)
    }
}

impl From<ProtocolError> for Error {
    fn from(err: ProtocolError) -> Self {
        match err {
            ProtocolError::Io(io) => Error::Io(Arc::new(io)),
            other => Error::Protocol(Arc::new(other)),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(Arc::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind's name reads back as the kind, through `FromStr` and serde alike; only a timeout
    /// and a lost leader leave the outcome unknown.
    #[test]
    fn kinds_keep_their_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(
                serde_json::from_str::<ErrorKind>(&json).expect("reads"),
                kind
            );
            assert_eq!(
                kind.outcome_unknown(),
                matches!(kind, ErrorKind::Timeout | ErrorKind::LeaderLost)
            );
        }
        assert!("nope".parse::<ErrorKind>().is_err());
        let lost = Error::LeaderLost { method: "m".into() };
        assert!(lost.outcome_unknown());
        assert!(!Error::Closed.outcome_unknown());
        assert_eq!(Error::Closed.kind(), ErrorKind::Closed);
    }
}
