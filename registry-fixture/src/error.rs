//! The error type of the registry client.

use serde::{Deserialize, Serialize};

/// What a [`RegistryConn`](super::RegistryConn) call can fail with.
///
/// It is `Clone + Serialize + Deserialize` so that it can travel as the error type of a
/// `cluster-client` method: the leader's real error reaches a follower unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RegistryError {
    /// An I/O error on the upstream connection (connect failure, reset, ...).
    #[error("registry i/o error: {0}")]
    Io(String),
    /// The server did not answer within the call deadline.
    #[error("registry call timed out")]
    Timeout,
    /// The server answered the request with an error.
    #[error("registry server error: {0}")]
    Server(String),
    /// The connection is closed (by [`close`](super::RegistryConn::close) or by the server).
    #[error("registry connection closed")]
    Closed,
    /// The server sent something this client does not understand.
    #[error("registry protocol error: {0}")]
    Protocol(String),
    /// A `cluster-client` transport failure (timeout, leader lost, bad frame) met while the call
    /// was forwarded to the process that owns the real connection.
    ///
    /// Produced by `From<cluster_client::Error>`, which exists with the `cluster-client` feature
    /// (the fixture itself does not depend on `cluster-client`). `kind` is the failure's
    /// `cluster_client::ErrorKind` by name (`"leader_lost"`, `"timeout"`, …), so that a caller can
    /// tell a call of unknown outcome without reading the message.
    #[error("cluster transport error ({kind}): {message}")]
    Cluster {
        /// The `cluster_client::ErrorKind`'s name.
        kind: String,
        /// What happened.
        message: String,
    },
}

impl From<std::io::Error> for RegistryError {
    fn from(err: std::io::Error) -> Self {
        RegistryError::Io(err.to_string())
    }
}

#[cfg(feature = "cluster-client")]
impl From<cluster_client::Error> for RegistryError {
    /// Keeps the transport failure's [`kind`](cluster_client::Error::kind) and message.
    fn from(err: cluster_client::Error) -> Self {
        RegistryError::Cluster {
            kind: err.kind().to_string(),
            message: err.to_string(),
        }
    }
}
