//! `create()` when the real client cannot be built (the upstream is down at start), with real
//! processes: by default it fails at once with a typed `factory` error; with `retry_factory` it
//! runs the election again until the upstream is up, within `connect_timeout`, and then leads.

mod support;

use std::time::Duration;

use cluster_client_registry_fixture::RegistryServer;
use serde_json::json;
use support::{Worker, free_port};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_factory_fails_create_or_is_retried_as_asked() {
    let upstream = format!("127.0.0.1:{}", free_port());

    // Nothing listens upstream: the default fails at once, with the kind.
    let started = Instant::now();
    let mut failing =
        Worker::spawn_with_upstream("failing", "generated", free_port(), &upstream, &[]);
    let failed = failing
        .expect(|v| v["event"] == "ready" || v["event"] == "failed")
        .await;
    assert_eq!(failed["event"], "failed", "{failed}");
    assert_eq!(failed["kind"], "factory", "{failed}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "at once: {:?}",
        started.elapsed()
    );

    // With retry_factory, the upstream comes up 500 ms later, and the same create() leads.
    let flags = ["--retry-factory", "--connect-ms", "8000"];
    let port = free_port();
    let mut patient = Worker::spawn_with_upstream("patient", "generated", port, &upstream, &flags);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early = patient
        .expect_within(Duration::ZERO, |v| v.get("event").is_some())
        .await;
    assert!(
        early.is_none(),
        "not ready while the upstream is down: {early:?}"
    );
    let up = RegistryServer::start(upstream.as_str())
        .await
        .expect("the upstream starts on its address");
    let ready = patient
        .expect(|v| v["event"] == "ready" || v["event"] == "failed")
        .await;
    assert_eq!(ready["event"], "ready", "{ready}");
    assert_eq!(ready["leader"], true, "{ready}");
    let echoed = patient
        .call(json!({ "cmd": "echo", "payload": "up" }))
        .await;
    assert_eq!(echoed["ok"], "up", "{echoed}");
    assert_eq!(up.stats().live_connections, 1);
}
