//! A follower killed mid-call: the leader drops what it held, the other followers notice nothing.

use std::time::Duration;

use cluster_client_registry_fixture::Endpoint;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::procfs::{TCP_CLOSE_WAIT, TCP_ESTABLISHED, tcp_states};
use crate::support::{Worker, endpoints_json, eventually, free_port, upstream, watches};
use crate::{SEAM, SLACK, assert_no_panics, expect_log, start_spin, stop_spin};

/// `kill -9` of a follower while its call runs in the leader: the leader drops its connection and
/// its subscriptions (the upstream watch ends where it was the last subscriber), and the other
/// followers notice nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_killed_mid_call() {
    let up = upstream().await;
    up.set("only-a", vec![Endpoint::new("a", 1)]);
    up.set("shared", vec![Endpoint::new("s", 1)]);
    let port = free_port();
    let flags = ["--heartbeat-ms", "200", "--response-ms", "2000"];
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &[&flags[..], &["--log", "debug"]].concat(),
    )
    .await;
    let (_, epoch) = leader.status().await;
    let mut a = Worker::ready("a", SEAM, port, &up, &flags).await;
    let mut others = vec![
        Worker::ready("b", SEAM, port, &up, &flags).await,
        Worker::ready("c", SEAM, port, &up, &flags).await,
    ];
    a.send(json!({ "cmd": "watch", "sub": "x", "service": "only-a" }))
        .await;
    assert_eq!(a.item("x").await, endpoints_json(&[("a", 1)]));
    for worker in std::iter::once(&mut a).chain(others.iter_mut()) {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "shared" }))
            .await;
        assert_eq!(worker.item("s").await, endpoints_json(&[("s", 1)]));
    }
    watches(&up, "only-a", 1).await;
    watches(&up, "shared", 1).await;
    let established = |port| {
        tcp_states(port)
            .into_iter()
            .filter(|s| *s == TCP_ESTABLISHED)
            .count()
    };
    assert_eq!(
        established(port),
        3,
        "the leader holds three follower connections"
    );

    for worker in &mut others {
        start_spin(worker, 3, 1, 2000 + SLACK.as_millis() as u64).await;
    }
    // A call that runs 600 ms in the leader, and a spin, both in flight at the kill.
    a.send(json!({ "cmd": "pause", "id": 900, "ms": 600 }))
        .await;
    start_spin(&mut a, 3, 1, u64::MAX).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.kill9().await;
    let killed = Instant::now();

    // The leader drops the connection (no socket of it left half-closed) and a's subscriptions: the
    // upstream watch of `only-a` ends, the shared one stays.
    eventually(
        "the leader closed the dead follower's connection",
        || async {
            let states = tcp_states(port);
            let open = states.iter().filter(|s| **s == TCP_ESTABLISHED).count();
            let half_closed = states.iter().filter(|s| **s == TCP_CLOSE_WAIT).count();
            (open == 2 && half_closed == 0).then_some(())
        },
    )
    .await;
    watches(&up, "only-a", 0).await;
    eprintln!(
        "the dead follower's connection and subscription gone {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(up.stats().watches.get("shared"), Some(&1));
    expect_log(&mut leader, &["follower connection closed"]).await;
    expect_log(&mut leader, &["last subscriber gone", "only-a"]).await;

    // The call a made still ran to its end in the leader; its answer had nowhere to go. Then the
    // others still get every update and every answer.
    tokio::time::sleep(Duration::from_millis(600)).await;
    up.set("shared", vec![Endpoint::new("s", 2)]);
    for worker in &mut others {
        worker.item_eq("s", &endpoints_json(&[("s", 2)])).await;
        let totals = stop_spin(worker, 3).await;
        eprintln!("{} while a was killed: {totals}", worker.name);
        assert!(totals["ok"].as_u64().expect("ok count") > 0);
        assert_eq!(
            totals["errors"],
            json!({}),
            "{} noticed nothing: {totals}",
            worker.name
        );
        assert_eq!(
            worker.status().await,
            (false, epoch),
            "{}: same term",
            worker.name
        );
        let stray = worker.take_all(|v| v.get("spin").is_some() || v.get("end").is_some());
        assert!(stray.is_empty(), "{}: {stray:?}", worker.name);
    }
    assert_eq!(leader.status().await, (true, epoch));
    let answer = leader
        .call(json!({ "cmd": "echo", "payload": "leader" }))
        .await;
    assert_eq!(answer["ok"], "leader");
    assert_eq!(
        up.stats().total_connections,
        1,
        "no failover, no second real client"
    );
    let mut all: Vec<&mut Worker> = vec![&mut leader];
    all.extend(others.iter_mut());
    assert_no_panics(&mut all);
    assert_eq!(a.panics(), Vec::<Value>::new());
}
