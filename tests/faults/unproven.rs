//! Connections that have not proved themselves have a small budget of their own: past it, a new
//! connection is closed at once, and they never take a member's place. Before, every connection
//! took a place under `max_connections` from its accept: 1,030 that never registered turned away
//! every new follower.

use std::time::Duration;

use serde_json::json;

use super::raw::Raw;
use super::support::{Worker, free_port, upstream};
use super::{SEAM, assert_no_panics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unproven_connections_never_take_a_members_place() {
    let up = upstream().await;
    let port = free_port();
    let flags = [
        "--max-connections",
        "4",
        "--max-unproven",
        "4",
        "--register-ms",
        "800",
    ];
    let mut leader = Worker::ready("leader", SEAM, port, &up, &flags).await;
    assert!(leader.status().await.0);
    let mut member = Worker::ready("member", SEAM, port, &up, &[]).await;

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
    assert_eq!(closed_at_once, 16, "four are held, the rest closed at once");

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
    assert!(leader.status().await.0, "the leader serves on");
    assert_no_panics(&mut [&mut leader, &mut member]);
}
