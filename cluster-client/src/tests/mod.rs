//! In-process tests of the protocol logic: a leader channel and a follower connection over
//! `tokio::io::duplex`, no sockets.

mod call_bounds;
mod duplex;
pub(crate) mod service;
mod subscription_bounds;
mod upstream_failures;
