//! Support code shared by the examples and the end-to-end tests of `cluster-client`.
//!
//! - [`registry`]: the embedded upstream registry (server, client, `upstream-registry` binary)
//!   that the demo, the end-to-end tests and the benchmark use as the real upstream system.
//! - [`api`]: the `Registry` trait under `#[cluster_client]` and its real client over one upstream
//!   connection.
//! - [`manual`]: the same trait wired to the runtime by hand (the service seam without the macro).

pub mod api;
pub mod manual;
pub mod registry;

/// The repository README's example, compiled and run as a doctest of this package.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
