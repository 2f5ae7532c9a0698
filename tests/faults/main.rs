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
//! - [`unread_answers`]: a follower that never reads its answers is closed as too slow.
//! - [`abandoned_calls`]: calls that ask for no deadline, from connections that leave, are
//!   cancelled.
//! - [`subscription_bounds`]: huge subscription keys are refused; topics are capped.
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
//!
//! The tests of the attacks of the "Why" list each print one `WHY <n>:` line: what the same
//! input does to the leader now, with its RSS before, at its peak (sampled while the attack runs)
//! and after, and what another follower saw meanwhile.

#[path = "../support/mod.rs"]
mod support;

mod procfs;
mod raw;

mod abandoned_calls;
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
mod subscription_bounds;
mod unproven;
mod unread_answers;

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
            v.get("level").is_some() && {
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

/// Asserts that a spin (its totals from [`stop_spin`]) made calls and none of them failed.
fn assert_spin_clean(totals: &Value) {
    assert!(totals["ok"].as_u64().expect("ok count") > 0, "{totals}");
    assert_eq!(
        totals["errors"],
        json!({}),
        "the other member's calls: {totals}"
    );
}

/// Asserts that the leader's peak RSS stayed under `before + margin_kib`.
fn assert_rss_within(before: u64, peak: &procfs::Peak, margin_kib: u64) {
    assert!(
        peak.kib < before + margin_kib,
        "{before} KiB -> {} KiB (bound: + {margin_kib} KiB)",
        peak.kib
    );
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
