//! Logs of the examples and binaries: the runtime's `tracing` events on stderr, filtered by
//! `RUST_LOG` (nothing when it is unset), e.g. `RUST_LOG=cluster_client=debug`.

/// Sends this process's `tracing` events to stderr, filtered by `RUST_LOG`; does nothing when a
/// subscriber is already set.
pub fn log_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}
