//! The end-to-end scenarios, each run once through the generated client and once through the
//! hand-written seam.

use std::time::Duration;

use cluster_client_registry_fixture::RegistryServer;
use serde_json::json;

use super::{
    Via, WAIT, Worker, endpoints, endpoints_json, eventually, free_port, live_connections,
    upstream, watches,
};

/// Starts a leader, then followers, on a fresh port.
async fn cluster(via: Via, up: &RegistryServer, n: usize, extra: &[&str]) -> (u16, Vec<Worker>) {
    let port = free_port();
    let mut workers = vec![Worker::ready("w0", via, port, up, extra).await];
    assert!(workers[0].status().await.0, "the first worker leads");
    for i in 1..n {
        workers.push(Worker::ready(&format!("w{i}"), via, port, up, extra).await);
    }
    (port, workers)
}

/// One leader and three followers: invoke, oneway, publish and subscribe, over one upstream connection.
pub async fn leader_and_three_followers(via: Via) {
    let up = upstream().await;
    up.set("billing", endpoints(&[("10.0.0.1", 80)]));
    let (_, mut w) = cluster(via, &up, 4, &[]).await;
    live_connections(&up, 1).await;
    let epoch = w[0].status().await.1;
    for worker in &mut w[1..] {
        assert_eq!(
            worker.status().await,
            (false, epoch),
            "{} follows the same term",
            worker.name
        );
    }
    for worker in &mut w {
        let answer = worker
            .call(json!({ "cmd": "lookup", "service": "billing" }))
            .await;
        assert_eq!(
            answer["ok"],
            endpoints_json(&[("10.0.0.1", 80)]),
            "{}: {answer}",
            worker.name
        );
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": worker.name }))
            .await;
        assert_eq!(answer["ok"], json!(worker.name));
    }
    // Subscribe everywhere; everyone gets the current value, then an update.
    for worker in &mut w {
        worker
            .send(json!({ "cmd": "watch", "sub": "b", "service": "billing" }))
            .await;
        assert_eq!(
            worker.item("b").await,
            endpoints_json(&[("10.0.0.1", 80)]),
            "{}",
            worker.name
        );
    }
    watches(&up, "billing", 1).await;
    up.set("billing", endpoints(&[("10.0.0.2", 81)]));
    for worker in &mut w {
        worker
            .item_eq("b", &endpoints_json(&[("10.0.0.2", 81)]))
            .await;
    }
    // Oneway: the note reaches the upstream through the leader.
    w[2].call(json!({ "cmd": "report", "note": "from-w2" }))
        .await;
    eventually("the oneway report upstream", || async {
        up.lookup("reports")
            .iter()
            .any(|e| e.host == "from-w2")
            .then_some(())
    })
    .await;
    // Publish: registered upstream, and every watcher sees it.
    w[3].call(json!({ "cmd": "register", "service": "billing", "host": "10.0.0.3", "port": 82 }))
        .await;
    for worker in &mut w {
        worker
            .item_eq("b", &endpoints_json(&[("10.0.0.2", 81), ("10.0.0.3", 82)]))
            .await;
    }
    // A method's own error crosses the wire as its own type: the upstream refuses an empty name.
    live_connections(&up, 1).await;
    assert_eq!(
        up.stats().total_connections,
        1,
        "only the leader ever connected upstream"
    );
}

/// A late subscriber gets the leader's cached item at once, without a second upstream watch.
pub async fn late_subscriber_gets_the_cached_item(via: Via) {
    let up = upstream().await;
    up.set("cfg", endpoints(&[("a", 1)]));
    let (_, mut w) = cluster(via, &up, 3, &[]).await;
    w[1].send(json!({ "cmd": "watch", "sub": "c", "service": "cfg" }))
        .await;
    assert_eq!(w[1].item("c").await, endpoints_json(&[("a", 1)]));
    watches(&up, "cfg", 1).await;
    w[2].send(json!({ "cmd": "watch", "sub": "c", "service": "cfg" }))
        .await;
    assert_eq!(w[2].item("c").await, endpoints_json(&[("a", 1)]));
    w[0].send(json!({ "cmd": "watch", "sub": "c", "service": "cfg" }))
        .await;
    assert_eq!(w[0].item("c").await, endpoints_json(&[("a", 1)]));
    assert_eq!(
        up.stats().watches.get("cfg"),
        Some(&1),
        "still one upstream watch"
    );
}

/// Unsubscribing stops delivery; the upstream watch ends when the last subscriber is gone.
pub async fn unsubscribe_ends_the_upstream_watch(via: Via) {
    let up = upstream().await;
    up.set("q", endpoints(&[("a", 1)]));
    let (_, mut w) = cluster(via, &up, 3, &[]).await;
    for worker in &mut w[1..] {
        worker
            .send(json!({ "cmd": "watch", "sub": "q", "service": "q" }))
            .await;
        assert_eq!(worker.item("q").await, endpoints_json(&[("a", 1)]));
    }
    watches(&up, "q", 1).await;
    w[1].send(json!({ "cmd": "unwatch", "sub": "q" })).await;
    w[1].expect(|v| v["unwatched"] == true).await;
    up.set("q", endpoints(&[("b", 2)]));
    w[2].item_eq("q", &endpoints_json(&[("b", 2)])).await;
    let stray = w[1]
        .expect_within(Duration::from_millis(300), |v| {
            v["sub"] == "q" && v.get("item").is_some()
        })
        .await;
    assert!(stray.is_none(), "no delivery after unsubscribe: {stray:?}");
    assert_eq!(up.stats().watches.get("q"), Some(&1));
    w[2].send(json!({ "cmd": "unwatch", "sub": "q" })).await;
    watches(&up, "q", 0).await;
}

/// `kill -9` of the leader while followers call and subscribe.
pub async fn leader_killed_while_followers_call_and_subscribe(via: Via) {
    let up = upstream().await;
    up.set("svc", endpoints(&[("a", 1)]));
    let (_, mut w) = cluster(
        via,
        &up,
        4,
        &["--heartbeat-ms", "500", "--response-ms", "2000"],
    )
    .await;
    live_connections(&up, 1).await;
    let old_epoch = w[0].status().await.1;
    for worker in &mut w {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
            .await;
        assert_eq!(worker.item("s").await, endpoints_json(&[("a", 1)]));
    }
    // Calls in flight at the kill: long pauses in the leader, and echo loops.
    for worker in &mut w[1..] {
        worker
            .send(json!({ "cmd": "pause", "id": 900, "ms": 800 }))
            .await;
        worker
            .send(json!({ "cmd": "loop", "id": 901, "count": 200, "payload": "x" }))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut leader = w.remove(0);
    leader.kill9().await;
    for worker in &mut w {
        let paused = worker.expect(|v| v["id"] == 900).await;
        assert_eq!(
            paused["kind"], "leader_lost",
            "{}: the call in flight fails with the typed error: {paused}",
            worker.name
        );
        let looped = worker.expect(|v| v["id"] == 901).await;
        let errors = looped["ok"]["errors"]
            .as_object()
            .expect("error counts")
            .clone();
        assert!(
            errors.keys().all(|k| k == "leader_lost"),
            "{}: only leader_lost errors (idempotent echo is retried): {looped}",
            worker.name
        );
    }
    // Exactly one survivor leads, in a newer term that everyone shares.
    let mut leaders = 0;
    let mut epochs = Vec::new();
    for worker in &mut w {
        let (is_leader, epoch) = worker.new_term(old_epoch).await;
        leaders += usize::from(is_leader);
        epochs.push(epoch);
    }
    assert_eq!(leaders, 1, "exactly one new leader");
    assert!(
        epochs.windows(2).all(|p| p[0] == p[1]),
        "one term: {epochs:?}"
    );
    live_connections(&up, 1).await;
    // Every stream resumes.
    up.set("svc", endpoints(&[("b", 2)]));
    for worker in &mut w {
        worker.item_eq("s", &endpoints_json(&[("b", 2)])).await;
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": "after" }))
            .await;
        assert_eq!(answer["ok"], "after");
    }
    watches(&up, "svc", 1).await;
}

/// Two channels on one port: the port's owner leads both; another process follows both.
pub async fn two_channels_share_one_port(via: Via) {
    let up = upstream().await;
    let port = free_port();
    let both = ["--channels", "alpha,beta"];
    let (mut first, ready) = Worker::start("first", via, port, &up, &both).await;
    assert_eq!(ready["leaders"], json!([true, true]), "{ready}");
    let (mut second, ready) = Worker::start("second", via, port, &up, &both).await;
    assert_eq!(ready["leaders"], json!([false, false]), "{ready}");
    for ch in [0, 1] {
        let answer = second
            .call(json!({ "cmd": "echo", "ch": ch, "payload": format!("ch{ch}") }))
            .await;
        assert_eq!(answer["ok"], json!(format!("ch{ch}")));
    }
    live_connections(&up, 2).await;
    let _ = first.call(json!({ "cmd": "status" })).await;
}

/// Leader-only fails with a typed error when the port is taken.
pub async fn leader_only_with_the_port_taken(via: Via) {
    let up = upstream().await;
    let (port, _w) = cluster(via, &up, 1, &[]).await;
    let (_, event) = Worker::start("wannabe", via, port, &up, &["--role", "leader"]).await;
    assert_eq!(event["event"], "failed");
    assert_eq!(event["kind"], "port_taken", "{event}");
}

/// Follower-only waits up to `max_wait_time` for a leader, then fails with a typed error.
pub async fn follower_only_with_no_leader(via: Via) {
    let up = upstream().await;
    let port = free_port();
    let started = std::time::Instant::now();
    let (_, event) = Worker::start(
        "lonely",
        via,
        port,
        &up,
        &["--role", "follower", "--max-wait-ms", "400"],
    )
    .await;
    assert_eq!(event["event"], "failed");
    assert_eq!(event["kind"], "no_leader", "{event}");
    assert!(started.elapsed() >= Duration::from_millis(400), "it waited");
    assert_eq!(up.stats().total_connections, 0);
}

/// Single mode: every process is its own leader, with its own upstream connection, no port.
pub async fn single_mode(via: Via) {
    let up = upstream().await;
    let port = free_port();
    let mut a = Worker::ready("a", via, port, &up, &["--single"]).await;
    let mut b = Worker::ready("b", via, port, &up, &["--single"]).await;
    assert!(
        a.status().await.0 && b.status().await.0,
        "both lead in single mode"
    );
    assert_eq!(
        a.call(json!({ "cmd": "echo", "payload": "s" })).await["ok"],
        "s"
    );
    live_connections(&up, 2).await;
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "single mode binds no port"
    );
}

/// A non-broadcast subscription hands each item to exactly one subscriber, across processes.
pub async fn work_goes_to_one_subscriber(via: Via) {
    let up = upstream().await;
    up.set("q", endpoints(&[("v", 0)]));
    let (_, mut w) = cluster(via, &up, 3, &[]).await;
    for worker in &mut w {
        worker
            .send(json!({ "cmd": "jobs", "sub": "j", "queue": "q" }))
            .await;
        worker
            .expect(|v| v["sub"] == "j" && v["watching"] == true)
            .await;
    }
    watches(&up, "q", 1).await;
    // Let every follower's subscribe packet reach the leader before the work starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for version in 1..=30u16 {
        up.set("q", endpoints(&[("v", version)]));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seen: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(1..=30).all(|v| seen.contains(&v)) && tokio::time::Instant::now() < deadline {
        for worker in &mut w {
            while let Some(item) = worker
                .expect_within(Duration::from_millis(20), |v| {
                    v["sub"] == "j" && v.get("item").is_some()
                })
                .await
            {
                seen.push(item["item"][0]["port"].as_u64().expect("a version"));
            }
        }
    }
    seen.retain(|v| *v > 0);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=30).collect::<Vec<u64>>(),
        "each version exactly once across the workers: {seen:?}"
    );
}
