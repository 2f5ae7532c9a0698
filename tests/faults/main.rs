//! Faults and bad input, in real processes: nothing is lost and nothing hangs. One module per
//! topic:
//!
//! - [`leader_churn`]: `kill -9` of the leader 20 times while followers call and hold
//!   subscriptions.
//! - [`handover`]: a rolling restart (SIGTERM, then start again, each member in turn) fails no
//!   call and loses no item.
//! - [`frozen_leader`]: a `SIGSTOP`ped leader; recovery after `SIGCONT`, then after `kill -9`.
//! - [`follower_killed`]: the leader drops the connection and the subscriptions of a follower
//!   killed while its call runs; the other followers do not notice.
//! - [`bad_input`], [`caps`]: a raw socket breaking the protocol on a live leader's port, and the
//!   leader's caps.
//! - [`buffered`]: the budget of bytes a leader buffers for all its followers, and the frame
//!   deadline.
//! - [`lying_lengths`]: application objects whose length prefixes lie, in both directions.
//! - [`other_user`]: a process of another user is turned away before it sends a byte.
//! - [`foreign_peer`]: `create()` fails with a typed error that says what it found on the port.
//! - [`panics`]: the "no process panics" checks of the others can fail.
//!
//! [`raw`] holds the raw-socket side (hand-made frames, foreign servers on the port) and
//! [`procfs`] the readings from `/proc`; the worker processes are `tests/support`'s.
//!
//! Request ids (wrap-around with calls pending, late answers after a timeout or a reconnect) are
//! unit-tested in `cluster-client/src/follower/tests.rs`; `frozen_leader` checks that concurrent
//! calls after a reconnect each get their own answer.
//!
//! Every wait is bounded in time and every loop in count; only loopback is used, on free ports; only
//! the processes a test started are ended, by their id. Timing assertions are correctness bounds
//! (a deadline plus slack), never speed.

#[path = "../support/mod.rs"]
mod support;

mod procfs;
mod raw;

mod auth;
mod bad_input;
mod buffered;
mod caps;
mod follower_killed;
mod foreign_peer;
mod frozen_leader;
mod handover;
mod key_from_arguments;
mod leader_churn;
mod log_flood;
mod lying_lengths;
mod other_user;
mod panics;
mod unproven;

use std::time::Duration;

use serde_json::{Value, json};

use support::{WAIT, Worker};

/// The fault tests run through the generated client (the scenarios of `tests/cluster.rs` cover
/// both seams).
const SEAM: &str = "generated";

/// Scheduling slack added to a deadline when checking that something ended within it.
const SLACK: Duration = Duration::from_millis(1500);

/// The text of a `--log` line's fields, for matching.
fn log_text(line: &Value) -> String {
    line["fields"]
        .as_object()
        .map(|fields| {
            fields
                .values()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

/// Waits for a log line of `worker` whose fields hold every one of `parts`.
async fn expect_log(worker: &mut Worker, parts: &[&str]) -> Value {
    let parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    worker
        .expect_within(WAIT, |v| {
            v.get("log").is_some() && {
                let text = log_text(v);
                parts.iter().all(|p| text.contains(p.as_str()))
            }
        })
        .await
        .unwrap_or_else(|| panic!("{}: no log line with {parts:?}", worker.name))
}

fn assert_no_panics(workers: &mut [&mut Worker]) {
    for worker in workers {
        let panics = worker.panics();
        assert!(panics.is_empty(), "{} panicked: {panics:?}", worker.name);
    }
}

/// Starts a spin (sequential echoes until stopped) on `worker`.
async fn start_spin(worker: &mut Worker, spin: u64, gap_ms: u64, slow_ms: u64) {
    worker
        .send(json!({ "cmd": "spin", "id": spin, "payload": worker.name, "gap_ms": gap_ms, "slow_ms": slow_ms }))
        .await;
}

/// Stops a spin and returns its totals `{ok, errors, max_ms}`.
async fn stop_spin(worker: &mut Worker, spin: u64) -> Value {
    let answer = worker
        .call(json!({ "cmd": "stop_spin", "spin": spin }))
        .await;
    answer["ok"].clone()
}
