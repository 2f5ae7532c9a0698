//! Leader churn: the leader stopped again and again while followers call and subscribe, by
//! `kill -9` (a failover) or by SIGTERM (a planned handover).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster_client_registry_fixture::{Endpoint, RegistryServer};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{WAIT, Worker, free_port, upstream};
use crate::{SEAM, SLACK, start_spin, stop_spin};

/// The subscription every churn worker holds, and the upstream service it watches.
const CHURN_SUB: &str = "c";

/// The numbered version a churn item carries: endpoints `[{host: "<n>", port: 0}]`.
fn version(item: &serde_json::Value) -> u64 {
    item[0]["host"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("a numbered item: {item}"))
}

/// A churn worker and what its stream has shown so far.
struct Member {
    worker: Worker,
    /// The last version its stream delivered.
    last: Option<u64>,
    /// Items delivered, in all.
    items: u64,
}

/// Starts a churn worker: it watches the numbered service and spins echoes.
async fn churn_member(
    name: &str,
    port: u16,
    up: &RegistryServer,
    flags: &[&str],
    slow_ms: u64,
) -> Member {
    let mut worker = Worker::ready(name, SEAM, port, up, flags).await;
    worker
        .send(json!({ "cmd": "watch", "sub": CHURN_SUB, "service": "churn" }))
        .await;
    start_spin(&mut worker, 1, 2, slow_ms).await;
    // And lookups, which are not idempotent: one in flight at a kill fails with `leader_lost`.
    worker
        .send(json!({ "cmd": "spin", "id": 2, "payload": "churn", "gap_ms": 2, "slow_ms": slow_ms, "lookup": true }))
        .await;
    Member {
        worker,
        last: None,
        items: 0,
    }
}

/// Reads `member`'s stream until it delivers a version above `above`; returns every version read.
async fn versions_until_above(member: &mut Member, above: u64) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    let mut versions = Vec::new();
    loop {
        for line in member.worker.take_all(|v| {
            v["sub"] == CHURN_SUB && (v.get("item").is_some() || v.get("end").is_some())
        }) {
            assert!(
                line.get("end").is_none(),
                "{}: the stream ended: {line}",
                member.worker.name
            );
            versions.push(version(&line["item"]));
        }
        if versions.last().is_some_and(|v| *v > above) {
            return versions;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no item above {above} (read {versions:?})",
            member.worker.name
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How the leader is stopped at each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `kill -9`: a failover. A stream may skip the items between the dead leader's last and the
    /// new leader's first; calls on the wire fail with a typed error.
    Kill,
    /// SIGTERM, which closes the client: a handover. No call fails and no item is skipped (one may
    /// repeat).
    Term,
}

/// Checks one batch of a member's stream: consecutive versions, except at most one step across a
/// leader change (`transition`: the highest version the old leader may have forwarded). That step
/// is where the stream resumed on the new leader: the cached or first upstream value. After a kill
/// it starts at or below `transition` and does not go back; after a handover it skips nothing (it
/// may go back: an item repeats). Everything published after it must follow without a gap.
fn check_batch(
    member: &mut Member,
    versions: &[u64],
    transition: Option<(u64, Stop)>,
) -> Option<(u64, u64)> {
    let name = &member.worker.name;
    if let Some((_, Stop::Term)) = transition {
        // Both leaders deliver while the follower moves: items may repeat and arrive out of order
        // (the successor's first before the old leader's last), but every version from the last
        // one before the move to the highest one after it arrives.
        let seen: std::collections::BTreeSet<u64> = versions.iter().copied().collect();
        let (Some(&low), Some(&high)) = (seen.first(), seen.last()) else {
            return None;
        };
        let from = member.last.map_or(low, |last| last + 1);
        let lost: Vec<u64> = (from..=high).filter(|v| !seen.contains(v)).collect();
        assert!(
            lost.is_empty(),
            "{name}: items {lost:?} lost in a handover (read {versions:?})"
        );
        let repeats = versions.len() - seen.len();
        member.items += versions.len() as u64;
        member.last = Some(high);
        return (repeats > 0).then_some((0, repeats as u64));
    }
    let mut steps = Vec::new();
    for &v in versions {
        if let Some(last) = member.last
            && v != last + 1
        {
            steps.push((last, v));
        }
        member.last = Some(v);
        member.items += 1;
    }
    match (steps.as_slice(), transition) {
        ([], _) => None,
        ([(a, b)], Some((dead_max, Stop::Kill))) => {
            assert!(b >= a, "{name}: the stream went back from {a} to {b}");
            assert!(
                *a <= dead_max,
                "{name}: a gap {a} -> {b} after the resume point (the dead leader forwarded at most {dead_max})"
            );
            Some((*a, *b))
        }
        (steps, _) => panic!(
            "{name}: items missing or repeated: steps {steps:?} (a kill allows one resume step: {transition:?})"
        ),
    }
}

/// Checks the spin lines of a member: only typed errors, none past its deadline.
fn check_spins(member: &mut Member, bound_ms: u64, seen: &mut HashMap<String, u64>) {
    for line in member.worker.take_all(|v| v.get("spin").is_some()) {
        assert!(
            line.get("slow").is_none(),
            "{}: a call took longer than its deadline: {line}",
            member.worker.name
        );
        let kind = line["kind"].as_str().unwrap_or_default().to_owned();
        assert!(
            kind == "leader_lost" || kind == "timeout",
            "{}: a call failed with something else than a typed transport error: {line}",
            member.worker.name
        );
        assert!(line["ms"].as_u64().expect("ms") <= bound_ms, "{line}");
        *seen.entry(kind).or_default() += 1;
    }
}

/// `kill -9` of the leader 20 times in a row while 4 followers call in a loop and hold a
/// subscription that gets an item every 3 ms. After every kill: exactly one leader (one term for
/// all, one live upstream connection, one upstream connection per term), every stream resumes and
/// shows every version from its resume point on, every call returns a value or a typed error within
/// its deadline, no process panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_churn() {
    churn(Stop::Kill).await;
}

/// The same with SIGTERM: 20 planned handovers in a row. After each: exactly one leader, one term
/// for all, above the last; no call failed; no stream skipped an item; the old leader exited
/// cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_churn() {
    churn(Stop::Term).await;
}

async fn churn(stop: Stop) {
    const KILLS: u64 = 20;
    const FOLLOWERS: usize = 4;
    const RESPONSE_MS: u64 = 1000;
    let bound_ms = RESPONSE_MS + SLACK.as_millis() as u64;
    let up = Arc::new(upstream().await);
    let port = free_port();
    let flags = [
        "--heartbeat-ms",
        "200",
        "--response-ms",
        "1000",
        "--connect-ms",
        "1000",
    ];

    // The upstream publishes version n of `churn` every 3 ms; `published` is raised before each
    // publish, so it is never below what anyone may have received.
    let published = Arc::new(AtomicU64::new(1));
    up.set("churn", vec![Endpoint::new("1", 0)]);
    let publisher = {
        let up = Arc::clone(&up);
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(3));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 2..1_000_000u64 {
                tick.tick().await;
                published.store(n, Ordering::SeqCst);
                up.set("churn", vec![Endpoint::new(n.to_string(), 0)]);
            }
        })
    };

    let mut members = vec![churn_member("w0", port, &up, &flags, bound_ms).await];
    assert!(members[0].worker.status().await.0, "w0 leads");
    for i in 1..=FOLLOWERS {
        members.push(churn_member(&format!("w{i}"), port, &up, &flags, bound_ms).await);
    }
    let now = published.load(Ordering::SeqCst);
    for member in &mut members {
        let versions = versions_until_above(member, now).await;
        check_batch(member, &versions, None);
    }
    let mut spawned = members.len();
    let mut leader = 0;
    let mut epoch = members[0].worker.status().await.1;
    let mut errors = HashMap::new();
    let mut calls = 0;
    let mut terms = Vec::new();
    let mut resumes = Vec::new();
    let mut gaps = Vec::new();

    for kill in 1..=KILLS {
        // Let calls and items flow for a while, so that the kill lands in the middle of them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut dead = members.remove(leader);
        match stop {
            Stop::Kill => dead.worker.kill9().await,
            Stop::Term => dead.worker.signal("TERM").await,
        }
        let killed = Instant::now();
        let dead_max = published.load(Ordering::SeqCst);
        let panics = dead.worker.panics();
        assert!(
            panics.is_empty(),
            "{} panicked: {panics:?}",
            dead.worker.name
        );

        // Exactly one leader: one new term for everyone, one of them leading it.
        let mut leaders = Vec::new();
        let mut epochs = Vec::new();
        for (i, member) in members.iter_mut().enumerate() {
            let (is_leader, new_epoch) = member.worker.new_term(epoch).await;
            if is_leader {
                leaders.push(i);
            }
            epochs.push(new_epoch);
        }
        terms.push(killed.elapsed());
        assert_eq!(
            leaders.len(),
            1,
            "kill {kill}: exactly one leader: {leaders:?}"
        );
        assert!(
            epochs.windows(2).all(|e| e[0] == e[1]),
            "kill {kill}: one term: {epochs:?}"
        );
        leader = leaders[0];
        epoch = epochs[0];
        // ... and one real client: one live upstream connection, one more in all per term.
        assert!(
            up.wait_for_live_connections(1, WAIT).await,
            "kill {kill}: one live upstream connection: {:?}",
            up.stats()
        );
        assert_eq!(
            up.stats().total_connections as u64,
            kill + 1,
            "kill {kill}: one real client per term"
        );

        // A leader that hands over exits once its followers have moved: what it delivered is all
        // read below, with the successor's first items.
        let mut read_past = dead_max;
        if stop == Stop::Term {
            let status = dead.worker.exit().await;
            assert!(
                status.success(),
                "round {kill}: the old leader exits cleanly: {status}"
            );
            read_past = published.load(Ordering::SeqCst);
        }
        // Every stream resumes, with every version from its resume point on.
        for member in &mut members {
            let versions = versions_until_above(member, read_past).await;
            if let Some(gap) = check_batch(member, &versions, Some((dead_max, stop))) {
                gaps.push(gap.1.abs_diff(gap.0));
            }
        }
        resumes.push(killed.elapsed());
        // Every call returned a value or a typed error within its deadline, and calls succeed again.
        for member in &mut members {
            check_spins(member, bound_ms, &mut errors);
            let answer = member
                .worker
                .call(json!({ "cmd": "echo", "payload": "served" }))
                .await;
            assert_eq!(
                answer["ok"], "served",
                "kill {kill}: {}: {answer}",
                member.worker.name
            );
            let panics = member.worker.panics();
            assert!(
                panics.is_empty(),
                "{} panicked: {panics:?}",
                member.worker.name
            );
        }
        assert_eq!(
            up.stats().watches.get("churn"),
            Some(&1),
            "kill {kill}: one upstream watch"
        );

        // A replacement, so that four followers remain.
        let mut fresh = churn_member(&format!("w{spawned}"), port, &up, &flags, bound_ms).await;
        spawned += 1;
        assert_eq!(
            fresh.worker.status().await,
            (false, epoch),
            "a newcomer follows the term"
        );
        let versions = versions_until_above(&mut fresh, published.load(Ordering::SeqCst)).await;
        check_batch(&mut fresh, &versions, None);
        members.push(fresh);
    }

    // After the last kill, no further gap at all.
    let now = published.load(Ordering::SeqCst);
    for member in &mut members {
        let versions = versions_until_above(member, now + 10).await;
        check_batch(member, &versions, None);
    }
    publisher.abort();
    for member in &mut members {
        for spin in [1, 2] {
            let totals = stop_spin(&mut member.worker, spin).await;
            assert!(
                totals["max_ms"].as_u64().expect("max_ms") <= bound_ms,
                "{}: {totals}",
                member.worker.name
            );
            assert!(
                totals["ok"].as_u64().expect("ok") > 0,
                "{}: {totals}",
                member.worker.name
            );
            calls += totals["ok"].as_u64().expect("ok");
        }
        check_spins(member, bound_ms, &mut errors);
        assert!(
            member.worker.is_running(),
            "{} is alive",
            member.worker.name
        );
        let panics = member.worker.panics();
        assert!(
            panics.is_empty(),
            "{} panicked: {panics:?}",
            member.worker.name
        );
    }
    if stop == Stop::Term {
        assert!(
            errors.is_empty(),
            "no call failed in a handover: {errors:?}"
        );
    }
    terms.sort();
    resumes.sort();
    gaps.sort_unstable();
    eprintln!(
        "{KILLS} x {stop:?}: new term everywhere after {:?} (min) / {:?} (median) / {:?} (max); every stream resumed after {:?} / {:?} / {:?}",
        terms[0],
        terms[terms.len() / 2],
        terms[terms.len() - 1],
        resumes[0],
        resumes[resumes.len() / 2],
        resumes[resumes.len() - 1]
    );
    eprintln!(
        "resume steps over all streams: {} (versions skipped: median {}, max {}); {calls} calls answered to the survivors, call errors: {errors:?}; items per surviving worker: {:?}",
        gaps.len(),
        gaps.get(gaps.len() / 2).copied().unwrap_or(0),
        gaps.last().copied().unwrap_or(0),
        members.iter().map(|m| m.items).collect::<Vec<_>>()
    );
}
