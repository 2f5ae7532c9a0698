//! Demo and test support of the `cluster-client` workspace: not part of the SDK, never published.
//! The examples (`examples/`), the worker process of the end-to-end tests (`cc-worker`) and the
//! end-to-end tests (`tests/`) share it.
//!
//! - [`registry_service`]: the test service: the `Registry` trait under `#[cluster_client]`, and
//!   its real client over one connection to the toy upstream registry
//!   (`cluster-client-registry-fixture`, the `registry-fixture/` member).
//! - [`manual_seam`]: the same trait wired to the runtime by hand (the service seam without the
//!   macro), so every end-to-end scenario runs through both.
//! - [`free_port`]: a loopback port nothing listens on, for tests and the benchmark.
//! - [`log_to_stderr`]: `RUST_LOG`-filtered logs for the examples and binaries.

#![forbid(unsafe_code)]

mod logging;
pub mod manual_seam;
mod ports;
pub mod registry_service;

pub use logging::log_to_stderr;
pub use ports::{free_port, try_free_port};

/// The repository README's example, compiled and run as a doctest of this package.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
