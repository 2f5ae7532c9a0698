//! The benchmark: cluster-client against raw tokio TCP moving the same bytes, in one run, on this host.
//!
//! ```text
//! cargo run --release --example bench -- --followers 4 --concurrency 64 [--json bench.json]
//! cargo run --release --example bench -- --quick          # a smoke run of a few seconds
//! ```
//!
//! One binary, many processes: the coordinator (the default role) starts this same executable as a
//! leader and followers of a `#[cluster_client]` trait whose real client answers from memory, and as
//! the raw baselines (echo server and clients, push server and clients), then drives each over its
//! stdin and stdout (one JSON object per line). Phases:
//!
//! - a. sequential invoke round trip, p50 and p99, with a 100 B and a 4 KiB argument;
//! - b. invoke throughput with C calls in flight per follower, F = 1 and F = `--followers`;
//! - c. oneway throughput, counted where the real client runs them;
//! - d. subscription fan-out to 16 and 64 followers at a fixed rate: delivery latency and items/s;
//! - e. the leader's resident memory alone and with 64 followers, and a follower's;
//! - f. failover: `kill -9` of the leader under load, 30 reps: elected, all recovered, failed calls;
//! - h. a late subscriber: from `create()` to the cached item.
//!
//! Every figure is printed beside its raw baseline, the ratio and the target of the issue. This is a
//! benchmark, not a test: nothing here asserts a time.

mod api;
mod cluster;
mod coordinator;
mod failover;
mod raw;
mod report;
mod util;

use std::future::Future;
use std::process::ExitCode;

fn block_on(role: impl Future<Output = ExitCode>) -> ExitCode {
    // Every role runs on the same runtime as an application would: multi-threaded, one worker a core.
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(role),
        Err(err) => {
            eprintln!("bench: no runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // `RUST_LOG=cluster_client=debug` prints the runtime's events of every process on stderr.
    cluster_client_workspace::log_to_stderr();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|arg| arg == "--role") {
        return match coordinator::Opts::parse(&args) {
            Ok(opts) => block_on(coordinator::run(opts)),
            Err(err) => {
                if !err.is_empty() {
                    eprintln!("bench: {err}");
                }
                eprintln!("{}", coordinator::USAGE);
                ExitCode::from(64)
            }
        };
    }
    let child = match util::ChildArgs::parse(&args) {
        Ok(child) => child,
        Err(err) => {
            eprintln!("bench: {err}");
            return ExitCode::from(64);
        }
    };
    let transport = child.transport;
    match (child.role.as_str(), child.port) {
        ("leader", Some(port)) => block_on(cluster::leader(port, transport)),
        ("follower", Some(port)) => block_on(cluster::follower(port, transport)),
        ("member", Some(port)) => block_on(failover::member(port, transport)),
        ("late", Some(port)) => block_on(failover::late(port, transport)),
        ("echo-server", _) => block_on(raw::echo_server()),
        ("echo-client", Some(port)) => block_on(raw::echo_client(port)),
        ("push-server", _) => block_on(raw::push_server()),
        ("push-client", Some(port)) => block_on(raw::push_client(port)),
        (role, port) => {
            eprintln!("bench: bad role {role} (port {port:?})");
            ExitCode::from(64)
        }
    }
}
