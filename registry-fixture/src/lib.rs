//! A toy upstream service registry for the demos and the tests of `cluster-client`: not part of
//! the SDK, and not meant for production. It is the "real upstream system" that the demo, the
//! end-to-end tests and the benchmark talk to, so they can prove that the upstream sees **one**
//! connection however many processes share it through `cluster-client`.
//!
//! It is deliberately independent of `cluster-client`: it plays the part a ZooKeeper, a config
//! centre or a service registry would play in production. The one bridge, behind the
//! `cluster-client` feature, is `From<cluster_client::Error>` for [`RegistryError`], so that the
//! error type can be a `#[cluster_client]` method's error (the orphan rule puts it here).
//!
//! - [`protocol`]: the line-delimited JSON wire (one object per `\n`-terminated line, at most
//!   [`protocol::MAX_LINE_LEN`] bytes).
//! - [`server::RegistryServer`]: the embedded server, with an in-process admin API
//!   (`set`, `stats`, `wait_for_live_connections`, `shutdown`).
//! - [`client::RegistryConn`]: one multiplexed TCP connection to the server: lookups, registrations,
//!   watches as `futures::Stream`s.
//! - The `upstream-registry` binary: the server as a stand-alone process, driven over stdin.

#![forbid(unsafe_code)]

pub mod client;
mod error;
mod io;
pub mod protocol;
pub mod server;

pub use client::{RegistryConn, WatchStream};
pub use error::RegistryError;
pub use protocol::{Endpoint, Stats};
pub use server::RegistryServer;
