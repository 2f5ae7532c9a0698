//! [`Error`]: every way a call, a subscription or `create()` can fail.

use crate::auth::AuthError;
use std::sync::Arc;

use crate::protocol::{FaultCode, ProtocolError, RefusalCode};
use crate::transcode::CodecError;

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
    /// A stable, machine-readable name of the variant (`"timeout"`, `"leader_lost"`, …), for logs
    /// and for error types that carry a transport failure as text.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            Error::LeaderLost { .. } => "leader_lost",
            Error::Closed => "closed",
            Error::PortTaken { .. } => "port_taken",
            Error::NoLeader { .. } => "no_leader",
            Error::ForeignPeer { .. } => "foreign_peer",
            Error::SchemaMismatch { .. } => "schema_mismatch",
            Error::Refused { .. } => "refused",
            Error::Factory { .. } => "factory",
            Error::Remote { .. } => "remote",
            Error::Lagged { .. } => "lagged",
            Error::SubscribeTimeout { .. } => "subscribe_timeout",
            Error::SubscriptionEnded { .. } => "subscription_ended",
            Error::Protocol(_) => "protocol",
            Error::Codec(_) => "codec",
            Error::Io(_) => "io",
            Error::Auth(_) => "auth",
        }
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
