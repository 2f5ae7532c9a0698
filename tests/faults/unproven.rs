//! Connections that have not proved themselves have a small budget of their own: past it, a new
//! connection is closed at once, and they never take a member's place. Before, every connection
//! took a place under `max_connections` from its accept: 1,030 that never registered turned away
//! every new follower.

use std::time::Duration;

use bytes::Bytes;
use cluster_client::protocol::conn::Heartbeat;
use cluster_client::protocol::{ConnObject, Packet};
use serde_json::json;

use super::procfs::{PeakRss, vm_rss_kib};
use super::raw::{Raw, frame};
use super::support::{Worker, free_port, upstream};
use super::{
    SEAM, SLACK, assert_no_panics, assert_rss_within, assert_spin_clean, start_spin, stop_spin,
};

/// The leader's budget of connections that have not proved themselves, in this test.
const MAX_UNPROVEN: usize = 4;

/// Rounds of connections reopened after the first.
const ROUNDS: usize = 2;

/// The leader's `register_timeout` in this test.
const REGISTER_TIMEOUT: Duration = Duration::from_millis(800);

/// What the leader's RSS may grow by while it turns away these connections.
const RSS_MARGIN_KIB: u64 = 16 * 1024;

/// How many of these connections were closed only past half the register timeout: held by it.
fn held(closed: &[Option<Duration>]) -> usize {
    closed
        .iter()
        .flatten()
        .filter(|&&after| after >= REGISTER_TIMEOUT / 2)
        .count()
}

/// A connection that never registers and only sends heartbeats.
async fn heartbeats_only(port: u16) -> Raw {
    let mut raw = Raw::connect(port).await;
    let heartbeat = frame(&Packet::request(
        1,
        3000,
        ConnObject::Heartbeat(Heartbeat {}),
        Bytes::new(),
    ));
    raw.send(&[heartbeat.clone(), heartbeat].concat()).await;
    raw
}

/// Twenty connections that never register are turned away (sixteen at once, four at the register
/// timeout) while the member is served and two more processes join. Then the attack goes on:
/// connections that only send heartbeats, and silent ones reopened as soon as they are closed, in
/// two more rounds of twenty; each round holds at most the budget, every connection is closed, and a
/// fourth process still joins. Prints `WHY 7` with the leader's RSS before / peak / after and the
/// member's spin meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unproven_connections_never_take_a_members_place() {
    let up = upstream().await;
    let port = free_port();
    let budget = MAX_UNPROVEN.to_string();
    let register_ms = REGISTER_TIMEOUT.as_millis().to_string();
    let flags = [
        "--max-connections",
        "4",
        "--max-unproven",
        &budget,
        "--register-ms",
        &register_ms,
        "--log",
        "warn",
    ];
    let mut leader = Worker::ready("leader", SEAM, port, &up, &flags).await;
    assert!(leader.status().await.0);
    let mut member = Worker::ready("member", SEAM, port, &up, &[]).await;
    start_spin(&mut member, 71, 1, 3000 + SLACK.as_millis() as u64).await;
    let rss_before = vm_rss_kib(leader.pid);
    let peak = PeakRss::start(leader.pid);

    // Twenty connections that say nothing: four wait for their register timeout, the others are
    // closed at once.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(Raw::connect(port).await);
    }
    // All watched at once, well within the register timeout (800 ms).
    let closed = futures::future::join_all(
        silent
            .iter_mut()
            .map(|raw| raw.closed_within(Duration::from_millis(300))),
    )
    .await;
    let closed_at_once = closed.iter().filter(|c| c.is_some()).count();
    eprintln!("20 silent connections: {closed_at_once} closed at once");
    assert_eq!(
        closed_at_once,
        20 - MAX_UNPROVEN,
        "four are held, the rest closed at once"
    );

    // The member is served throughout, and two more processes join: the places under
    // `max_connections` are the members'.
    let answer = member.call(json!({ "cmd": "echo", "payload": "m" })).await;
    assert_eq!(answer["ok"], "m", "{answer}");
    let mut joined = Vec::new();
    for name in ["second", "third"] {
        let mut worker = Worker::ready(name, SEAM, port, &up, &["--max-wait-ms", "5000"]).await;
        let answer = worker.call(json!({ "cmd": "echo", "payload": name })).await;
        assert_eq!(answer["ok"], name, "{answer}");
        joined.push(worker);
    }
    drop(silent);

    // The attacker reopens: each round, ten silent connections and ten that only send heartbeats
    // (the leader closes one at its first packet, not a register_channel, or at once when the
    // budget is spent). Every one is closed within the register timeout; past half of it, a round
    // holds at most the budget of silent ones and no heartbeat-only one.
    let mut held_per_round = Vec::new();
    for _ in 0..ROUNDS {
        let (mut quiet, mut beating) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            quiet.push(Raw::connect(port).await);
            beating.push(heartbeats_only(port).await);
        }
        let within = REGISTER_TIMEOUT + SLACK;
        let (quiet, beating) = tokio::join!(
            futures::future::join_all(quiet.iter_mut().map(|raw| raw.closed_within(within))),
            futures::future::join_all(beating.iter_mut().map(|raw| raw.closed_within(within))),
        );
        assert!(
            quiet.iter().chain(&beating).all(Option::is_some),
            "every connection of the round is closed: {quiet:?} {beating:?}"
        );
        assert!(
            held(&quiet) <= MAX_UNPROVEN,
            "at most the budget is held: {quiet:?}"
        );
        assert_eq!(
            held(&beating),
            0,
            "a heartbeat-only connection is closed at once: {beating:?}"
        );
        held_per_round.push(held(&quiet));
    }
    let mut fourth = Worker::ready("fourth", SEAM, port, &up, &["--max-wait-ms", "5000"]).await;
    let answer = fourth.call(json!({ "cmd": "echo", "payload": "4" })).await;
    assert_eq!(answer["ok"], "4", "{answer}");

    let rss_peak = peak.stop().await;
    let rss_after = vm_rss_kib(leader.pid);
    let totals = stop_spin(&mut member, 71).await;
    eprintln!(
        "WHY 7: 20 connections that never register ({closed_at_once} closed at once, budget \
         {MAX_UNPROVEN}, register timeout 800 ms), then {ROUNDS} rounds reopening 10 silent + 10 \
         heartbeat-only ones (silent ones held past 400 ms per round: {held_per_round:?}, no \
         heartbeat-only one; all closed): \
         processes second, third and fourth still joined (max_connections 4, members only); \
         leader VmRSS {rss_before} before / {} peak ({} samples) / {rss_after} after KiB \
         (bound: peak < before + {RSS_MARGIN_KIB} KiB); the member's spin meanwhile: {totals}",
        rss_peak.kib, rss_peak.samples
    );
    assert_rss_within(rss_before, &rss_peak, RSS_MARGIN_KIB);
    assert_spin_clean(&totals);
    assert!(leader.status().await.0, "the leader serves on");
    assert_no_panics(&mut [&mut leader, &mut member, &mut fourth]);
}
