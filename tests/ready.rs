//! `Subscription::ready()` with real processes: it resolves once the leader's upstream watch is
//! open (the upstream server counts it when the follower hears), and at once for a later
//! subscriber of a topic that is live already, which adds no upstream watch.

mod support;

use serde_json::json;
use support::{Worker, endpoints, free_port, upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_is_ready_once_the_upstream_watch_is_open() {
    let up = upstream().await;
    up.set("svc", endpoints(&[("10.0.0.1", 1)]));
    let port = free_port();
    let mut leader = Worker::ready("leader", "generated", port, &up, &[]).await;
    assert!(leader.status().await.0);
    let mut first = Worker::ready("first", "generated", port, &up, &[]).await;
    let mut later = Worker::ready("later", "generated", port, &up, &[]).await;
    assert_eq!(up.stats().watches.get("svc"), None, "nothing watched yet");

    first
        .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
        .await;
    let ready = first
        .expect(|v| v["sub"] == "s" && v.get("ready").is_some())
        .await;
    assert_eq!(ready["ready"], true, "{ready}");
    // The follower heard after the leader's real client had its watch open upstream.
    assert_eq!(up.stats().watches.get("svc"), Some(&1), "{:?}", up.stats());

    later
        .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
        .await;
    let ready = later
        .expect(|v| v["sub"] == "s" && v.get("ready").is_some())
        .await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(
        up.stats().watches.get("svc"),
        Some(&1),
        "one upstream watch for both"
    );
}
