//! In-process tests of the protocol logic: a leader channel and a follower connection over
//! `tokio::io::duplex`, no sockets.

mod duplex;
pub(crate) mod service;
