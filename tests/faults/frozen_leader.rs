//! A frozen leader (`SIGSTOP`): followers fail fast without spinning, and recover by themselves.

use std::time::Duration;

use cluster_client_registry_fixture::Endpoint;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::procfs::{cpu_ticks, proc_state};
use crate::support::{WAIT, Worker, endpoints_json, eventually, free_port, upstream};
use crate::{SEAM, SLACK, assert_no_panics, expect_log};

/// Calls `echo` on `worker` until one fails with something other than a timeout (the follower has
/// noticed the frozen leader and fails fast); every call must end within its deadline.
async fn until_fail_fast(worker: &mut Worker, deadline_ms: u64) -> Value {
    for _ in 0..200 {
        let started = Instant::now();
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": "frozen?" }))
            .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(deadline_ms) + SLACK,
            "{}: a call ended within its deadline: {answer} after {took:?}",
            worker.name
        );
        assert!(
            answer.get("ok").is_none(),
            "{}: a frozen leader answered: {answer}",
            worker.name
        );
        if answer["kind"] != "timeout" {
            return answer;
        }
    }
    panic!("{}: calls never failed fast", worker.name);
}

/// A leader frozen by `SIGSTOP`: followers notice within their heartbeat bound, fail calls fast
/// with a typed error instead of hanging, retry without a busy loop, and recover by themselves
/// after `SIGCONT` (same term) and after the frozen process is killed (a new term).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_leader() {
    const HEARTBEAT_MS: u64 = 100;
    const RESPONSE_MS: u64 = 300;
    const CONNECT_MS: u64 = 300;
    let up = upstream().await;
    up.set("cfg", vec![Endpoint::new("v", 1)]);
    let port = free_port();
    let flags = [
        "--heartbeat-ms",
        &HEARTBEAT_MS.to_string(),
        "--response-ms",
        &RESPONSE_MS.to_string(),
        "--connect-ms",
        &CONNECT_MS.to_string(),
    ]
    .map(str::to_owned);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &flags).await;
    let (_, epoch) = leader.status().await;
    let mut followers = Vec::new();
    for i in 0..3 {
        let logged = [&flags[..], &["--log", "warn"]].concat();
        followers.push(Worker::ready(&format!("f{i}"), SEAM, port, &up, &logged).await);
    }
    for worker in &mut followers {
        worker
            .send(json!({ "cmd": "watch", "sub": "cfg", "service": "cfg" }))
            .await;
        assert_eq!(worker.item("cfg").await, endpoints_json(&[("v", 1)]));
    }

    // Freeze. A call in flight across the freeze: its own value or a typed error, never another's.
    followers[0]
        .send(json!({ "cmd": "pause", "id": 500, "ms": 50 }))
        .await;
    leader.signal("STOP").await;
    let frozen = Instant::now();
    let pid = leader.pid;
    eventually("the leader stopped", || async move {
        (proc_state(pid) == 'T').then_some(())
    })
    .await;
    // Each follower notices within its heartbeat bound: an unanswered heartbeat (sent every
    // interval, answered within the response timeout) ends the connection.
    let mut noticed = Vec::new();
    for worker in &mut followers {
        expect_log(worker, &["heartbeat unanswered"]).await;
        noticed.push(frozen.elapsed());
    }
    eprintln!("followers noticing the frozen leader {noticed:?} after the freeze");
    let bound = Duration::from_millis(2 * HEARTBEAT_MS + RESPONSE_MS) + SLACK;
    for (worker, took) in followers.iter().zip(&noticed) {
        assert!(
            *took < bound,
            "{} noticed within {bound:?}: {took:?}",
            worker.name
        );
    }
    let mut failing = Vec::new();
    for worker in &mut followers {
        let answer = until_fail_fast(worker, RESPONSE_MS).await;
        failing.push(frozen.elapsed());
        assert_eq!(
            answer["kind"], "no_leader",
            "{}: a typed error: {answer}",
            worker.name
        );
        let error = answer["err"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("port {port}")) && error.contains("answered nothing"),
            "{}: {error}",
            worker.name
        );
    }
    eprintln!("followers failing fast {failing:?} after the freeze");
    // Noticing, then two election rounds of one connect timeout each (the first failed round keeps
    // the state `Electing`, where calls wait within their deadline), plus backoff and slack.
    let bound =
        Duration::from_millis(2 * HEARTBEAT_MS + RESPONSE_MS + 2 * CONNECT_MS + 100) + SLACK;
    for (worker, took) in followers.iter().zip(&failing) {
        assert!(
            *took < bound,
            "{} failed fast within {bound:?}: {took:?}",
            worker.name
        );
    }
    let in_flight = followers[0].expect(|v| v["id"] == 500).await;
    assert!(
        in_flight["ok"] == 50
            || in_flight["kind"] == "no_leader"
            || in_flight["kind"] == "timeout"
            || in_flight["kind"] == "leader_lost",
        "the call in flight: its own value or a typed error: {in_flight}"
    );

    // While frozen: retrying, not spinning. CPU time of each follower over a quiet window.
    let window = Duration::from_millis(1500);
    let before: Vec<u64> = followers.iter().map(|w| cpu_ticks(w.pid)).collect();
    tokio::time::sleep(window).await;
    let used: Vec<u64> = followers
        .iter()
        .zip(&before)
        .map(|(w, b)| cpu_ticks(w.pid) - b)
        .collect();
    eprintln!("CPU ticks (1/100 s) of each follower over {window:?} frozen: {used:?}");
    for (worker, ticks) in followers.iter().zip(&used) {
        // A busy loop would use ~150 ticks (a whole core); allow a tenth of one.
        assert!(*ticks <= 15, "{}: {ticks} ticks in {window:?}", worker.name);
    }
    for worker in &mut followers {
        let started = Instant::now();
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": "still frozen" }))
            .await;
        assert_eq!(
            answer["kind"], "no_leader",
            "{}: fails fast: {answer}",
            worker.name
        );
        assert!(started.elapsed() < Duration::from_millis(RESPONSE_MS) + SLACK);
    }

    // Thaw: every follower rejoins the same term by itself.
    leader.signal("CONT").await;
    let thawed = Instant::now();
    for worker in &mut followers {
        let answer = loop {
            let answer = worker
                .call(json!({ "cmd": "echo", "payload": "thawed" }))
                .await;
            if answer["ok"] == "thawed" || thawed.elapsed() > WAIT {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            answer["ok"], "thawed",
            "{}: served again: {answer}",
            worker.name
        );
        assert_eq!(
            worker.status().await,
            (false, epoch),
            "{}: same term",
            worker.name
        );
    }
    eprintln!(
        "all followers served again {:?} after SIGCONT",
        thawed.elapsed()
    );
    assert_eq!(leader.status().await, (true, epoch));
    up.set("cfg", vec![Endpoint::new("v", 2)]);
    for worker in &mut followers {
        worker.item_eq("cfg", &endpoints_json(&[("v", 2)])).await;
    }
    // After the reconnect, concurrent calls each get their own answer.
    for (n, worker) in followers.iter_mut().enumerate() {
        let base = 10 * n as u64;
        for ms in 0..10 {
            worker
                .send(json!({ "cmd": "pause", "id": 1000 + ms, "ms": base + ms }))
                .await;
        }
        for ms in 0..10 {
            let answer = worker.expect(|v| v["id"] == 1000 + ms).await;
            assert_eq!(answer["ok"], base + ms, "{}: its own answer", worker.name);
        }
    }

    // Freeze again, then kill the frozen process: a follower takes over in a new term.
    leader.signal("STOP").await;
    until_fail_fast(&mut followers[0], RESPONSE_MS).await;
    leader.kill9().await;
    let killed = Instant::now();
    let mut leaders = 0;
    let mut epochs = Vec::new();
    for worker in &mut followers {
        let status = worker.new_term(epoch).await;
        leaders += usize::from(status.0);
        epochs.push(status.1);
    }
    assert_eq!(leaders, 1, "exactly one new leader");
    assert!(
        epochs.windows(2).all(|e| e[0] == e[1]),
        "one term: {epochs:?}"
    );
    for worker in &mut followers {
        let answer = loop {
            let answer = worker
                .call(json!({ "cmd": "echo", "payload": "after" }))
                .await;
            if answer["ok"] == "after" || killed.elapsed() > WAIT {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(answer["ok"], "after", "{}: {answer}", worker.name);
    }
    eprintln!(
        "served by a new leader {:?} after killing the frozen one",
        killed.elapsed()
    );
    assert!(up.wait_for_live_connections(1, WAIT).await);
    assert_eq!(up.stats().total_connections, 2, "one real client per term");
    up.set("cfg", vec![Endpoint::new("v", 3)]);
    for worker in &mut followers {
        worker.item_eq("cfg", &endpoints_json(&[("v", 3)])).await;
    }
    let mut all: Vec<&mut Worker> = followers.iter_mut().collect();
    assert_no_panics(&mut all);
}
