//! Who may join: only processes that can prove they hold the cluster's secret, which by default is
//! a file only this user can read.
//!
//! [`dir`] is this user's private directory of cluster files; [`secret`] finds or creates the
//! secret there; the challenge and response over it is part of the wire,
//! in [`crate::protocol::proof`].

pub(crate) mod dir;
pub(crate) mod secret;

pub use secret::Secret;

use std::path::PathBuf;

/// The cluster secret could not be set up, or a peer could not prove it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The secret's file or directory could not be read or written.
    #[error("cluster secret {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The secret's file or directory may be read or changed by someone else.
    #[error("cluster secret {} {problem}; to fix it: {fix}", path.display())]
    Insecure {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// No random bytes could be had from the operating system.
    #[error("no random bytes for the cluster secret: {0}")]
    Random(#[from] getrandom::Error),
}
