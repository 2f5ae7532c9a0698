#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod protocol;
pub mod service;
pub mod transcode;

#[doc(hidden)]
pub mod __private;
mod arguments;
mod clock;
mod election;
mod error;
mod follower;
mod handle;
mod ids;
mod leader;
mod mailbox;
mod options;
mod scratch;
mod server;
mod signal;
mod subscription;
mod transport;

#[cfg(test)]
mod tests;
mod writer;

pub use cluster_client_derive::cluster_client;
pub use error::Error;
pub use handle::{Factory, Handle};
pub use options::{DEFAULT_PORT, Options, PORT_ENV, Role, SINGLE_MODE_ENV, SlowConsumer};
pub use subscription::Subscription;
pub use transcode::Codec;
