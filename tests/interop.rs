//! Rust and Node processes in one cluster, with the Node package's codec (`serialize-json`) and
//! auth off: Node followers of a Rust leader, Rust followers of a Node leader, and leadership
//! passing from Node to Rust and back with streams flowing in both languages.
//!
//! The Node side is `tests/interop/worker.js`, on the npm package pinned in
//! `tests/interop/package-lock.json` (`.ci/run` runs `npm ci` there). It takes the same commands as
//! the Rust test worker (`cc-worker`) and prints the same lines, so one [`Worker`] drives both.
//! When a Node process leads, its real client talks to the same upstream registry as a Rust
//! leader's. Without `node`, or without that install, the tests fail and say what to do: they
//! never pass silently.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_client_registry_fixture::{Endpoint, RegistryServer};
use serde_json::{Value, json};
use support::{WAIT, Worker, endpoints, eventually, free_port, upstream, watches};
use tokio::process::Command;

/// The folder of the Node side.
fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Fails loudly unless `node` runs and the pinned npm package is installed.
fn require_node() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "NODE IS MISSING: these tests run the original Node package; install Node.js 20 or later"
    );
    let package = interop_dir().join("node_modules/cluster-client/package.json");
    assert!(
        package.exists(),
        "THE NODE PACKAGE IS NOT INSTALLED: run `npm ci` in {}",
        interop_dir().display()
    );
}

/// A Node member on `port` in `role` (`any`, `leader` or `follower`), not yet ready.
fn node(name: &str, port: u16, up: &RegistryServer, role: &str, extra: &[&str]) -> Worker {
    let mut command = Command::new("node");
    command
        .arg(interop_dir().join("worker.js"))
        .args(["--port", &port.to_string()])
        .args(["--upstream", &up.local_addr().to_string()])
        .args(["--role", role])
        .args(extra)
        .current_dir(interop_dir());
    Worker::run(name, command)
}

/// A Rust member on `port` with what a mixed cluster needs (the Node package's codec, no auth),
/// not yet ready.
fn rust(name: &str, port: u16, up: &RegistryServer, extra: &[&str]) -> Worker {
    let mixed = ["--codec", "serialize-json", "--no-auth"];
    Worker::spawn(name, "generated", port, up, &[&mixed[..], extra].concat())
}

/// A string with every character serialize-json escapes, and others.
const ESCAPED: &str = "héllo | wörld ^ 100% + $ # @ ] [ ~ \\ \" done";

/// The endpoints of version `n` of the service `svc`.
fn svc(n: u16) -> Vec<Endpoint> {
    endpoints(&[("10.0.0.1", 8000 + n)])
}

fn svc_json(n: u16) -> Value {
    serde_json::to_value(svc(n)).expect("endpoints serialize")
}

/// Waits until the upstream registry lists `endpoint` under `service`.
async fn registered_upstream(up: &RegistryServer, service: &str, endpoint: Endpoint) {
    eventually(&format!("{endpoint} under {service} upstream"), || async {
        up.lookup(service).contains(&endpoint).then_some(())
    })
    .await;
}

/// No item of `sub` arrives within `wait`.
async fn no_item(worker: &mut Worker, sub: &str, wait: Duration) {
    let item = worker
        .expect_within(wait, |v| v["sub"] == sub && v.get("item").is_some())
        .await;
    assert!(
        item.is_none(),
        "{}: {sub} still delivers: {item:?}",
        worker.name
    );
}

/// After 1.5 s of quiet (heartbeats only), `caller`'s next call is served.
async fn served_after_quiet(caller: &mut Worker) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = caller
        .call(json!({ "cmd": "echo", "payload": "after the quiet" }))
        .await;
    assert_eq!(after["ok"], "after the quiet", "{}: {after}", caller.name);
}

/// Ends `worker`'s subscription `sub`.
async fn unwatch(worker: &mut Worker, sub: &str) {
    worker.send(json!({ "cmd": "unwatch", "sub": sub })).await;
    worker
        .expect(|v| v["sub"] == sub && v["unwatched"] == true)
        .await;
}

/// The warnings and errors a Node worker printed so far (its package's logger and `error` events).
fn complaints(worker: &mut Worker) -> Vec<Value> {
    worker.take_all(|v| v["event"] == "log" || v["event"] == "error")
}

/// A Node follower uses a Rust leader:
/// - invoke: a string with every escaped character and a list of structs cross both ways; a method
///   the leader does not have fails as a JavaScript error with the fault's name, message and code;
/// - oneway (`report`) and publish (`register`, one `reg` as the Node package sends it) reach the
///   upstream through the leader's real client;
/// - subscribe, as a late subscriber: the leader already watches `svc`, and the Node follower gets
///   the cached value, then the next change, on the one upstream watch;
/// - heartbeats: with an idle limit of 600 ms at the leader, 1.5 s of quiet leave the connection
///   open (the Node package logs a warning when its connection closes: none is printed);
/// - push acknowledgements: the Node follower acks every item; the leader takes them and serves
///   on;
/// - unsubscribe: the Node follower gets nothing more, while the leader's own stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follower_uses_a_rust_leader() {
    require_node();
    let up = upstream().await;
    up.set("svc", svc(1));
    let port = free_port();
    let mut leader = rust("rust-leader", port, &up, &["--heartbeat-ms", "200"])
        .when_ready()
        .await;
    assert!(leader.status().await.0, "the Rust worker leads");
    leader
        .send(json!({ "cmd": "watch", "sub": "l", "service": "svc" }))
        .await;
    assert_eq!(leader.item("l").await, svc_json(1));

    let mut node = node(
        "node-follower",
        port,
        &up,
        "follower",
        &["--heartbeat-ms", "200"],
    )
    .when_ready()
    .await;
    assert!(!node.status().await.0, "the Node worker follows");
    let echoed = node
        .call(json!({ "cmd": "echo", "payload": ESCAPED }))
        .await;
    assert_eq!(echoed["ok"], ESCAPED, "{echoed}");
    let found = node
        .call(json!({ "cmd": "lookup", "service": "svc" }))
        .await;
    assert_eq!(found["ok"], svc_json(1), "{found}");
    let failed = node.call(json!({ "cmd": "nope" })).await;
    assert_eq!(failed["kind"], "unknown_method", "{failed}");
    assert_eq!(failed["code"], "unknown_method", "{failed}");
    assert!(
        failed["err"].as_str().is_some_and(|m| m.contains("nope")),
        "{failed}"
    );

    node.call(json!({ "cmd": "report", "note": "from-node" }))
        .await;
    node.call(json!({ "cmd": "register", "service": "nodes", "host": "node-1", "port": 1 }))
        .await;
    registered_upstream(&up, "reports", Endpoint::new("from-node", 0)).await;
    registered_upstream(&up, "nodes", Endpoint::new("node-1", 1)).await;

    node.send(json!({ "cmd": "watch", "sub": "n", "service": "svc" }))
        .await;
    assert_eq!(node.item("n").await, svc_json(1), "the cached value");
    watches(&up, "svc", 1).await;
    up.set("svc", svc(2));
    leader.item_eq("l", &svc_json(2)).await;
    node.item_eq("n", &svc_json(2)).await;
    assert_eq!(
        up.stats().watches.get("svc"),
        Some(&1),
        "one upstream watch"
    );

    served_after_quiet(&mut node).await;
    assert_eq!(complaints(&mut node), Vec::<Value>::new());

    unwatch(&mut node, "n").await;
    up.set("svc", svc(3));
    leader.item_eq("l", &svc_json(3)).await;
    no_item(&mut node, "n", Duration::from_millis(300)).await;
    assert_eq!(complaints(&mut node), Vec::<Value>::new());
    assert!(
        node.exit().await.success(),
        "the Node follower exits cleanly"
    );
}

/// A Node follower that asks a Rust leader's port for a channel it does not lead is refused with
/// the reason, as a JavaScript error: the refusal's application object is the Node package's
/// `{success: false, error}`, in its codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follower_is_told_why_it_is_refused() {
    require_node();
    let up = upstream().await;
    let port = free_port();
    let mut leader = rust("rust-leader", port, &up, &[]).when_ready().await;
    assert!(leader.status().await.0);
    let mut refused = node("node-other", port, &up, "follower", &["--name", "other"]);
    let failed = refused
        .expect(|v| v["event"] == "ready" || v["event"] == "failed")
        .await;
    assert_eq!(failed["event"], "failed", "{failed}");
    assert_eq!(failed["code"], "unknown_channel", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("no leader of channel `other`")),
        "{failed}"
    );
    let echoed = leader
        .call(json!({ "cmd": "echo", "payload": "still leading" }))
        .await;
    assert_eq!(echoed["ok"], "still leading");
}

/// A Rust follower uses a Node leader, whose real client is its own connection to the upstream:
/// - invoke: arguments and results cross both ways; a JavaScript error its error type cannot hold
///   is a typed `codec` error, and the follower calls on;
/// - oneway and publish reach the upstream through the Node leader's real client;
/// - subscribe, as a late subscriber: a Node follower already watches `svc`; the Rust follower
///   gets the Node leader's cached value, then the next change, on the one upstream watch;
/// - push acknowledgements and heartbeats: the Node leader waits 1 s for each ack and allows 600
///   ms of silence; over 1.5 s it reports no missing ack and closes nothing (either would be an
///   `error` event of the Node package, printed by the worker);
/// - unsubscribe: nothing more reaches the Rust follower; the Node follower's stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_follower_uses_a_node_leader() {
    require_node();
    let up = upstream().await;
    up.set("svc", svc(1));
    let port = free_port();
    let node_args = ["--heartbeat-ms", "200", "--response-ms", "1000"];
    let mut leader = node("node-leader", port, &up, "leader", &node_args)
        .when_ready()
        .await;
    assert!(leader.status().await.0, "the Node worker leads");
    let mut node_follower = node("node-follower", port, &up, "follower", &node_args)
        .when_ready()
        .await;
    node_follower
        .send(json!({ "cmd": "watch", "sub": "n", "service": "svc" }))
        .await;
    assert_eq!(node_follower.item("n").await, svc_json(1));

    let mut follower = rust(
        "rust-follower",
        port,
        &up,
        &["--role", "follower", "--heartbeat-ms", "100"],
    )
    .when_ready()
    .await;
    assert!(!follower.status().await.0);
    let echoed = follower
        .call(json!({ "cmd": "echo", "payload": ESCAPED }))
        .await;
    assert_eq!(echoed["ok"], ESCAPED, "{echoed}");
    let found = follower
        .call(json!({ "cmd": "lookup", "service": "svc" }))
        .await;
    assert_eq!(found["ok"], svc_json(1), "{found}");
    // The registry's error type is an enum; a JavaScript error (stack, name, message, code) is
    // not one of its variants.
    let failed = follower.call(json!({ "cmd": "pause", "ms": 1 })).await;
    assert_eq!(failed["kind"], "codec", "{failed}");
    // The Node package reports every failed call on its leader as an `error` event.
    leader
        .expect(|v| v["event"] == "error" && v["name"] == "NotSupported")
        .await;
    let again = follower
        .call(json!({ "cmd": "echo", "payload": "after" }))
        .await;
    assert_eq!(again["ok"], "after", "{again}");
    // The Node package keeps no stats: asked for them, its follower is told so, not left to time out.
    let stats = follower.call(json!({ "cmd": "stats" })).await;
    assert_eq!(stats["kind"], "remote", "{stats}");
    assert!(
        stats["err"]
            .as_str()
            .is_some_and(|err| err.contains("Node package")),
        "{stats}"
    );

    follower
        .call(json!({ "cmd": "report", "note": "from-rust" }))
        .await;
    follower
        .call(json!({ "cmd": "register", "service": "rusts", "host": "rust-1", "port": 2 }))
        .await;
    registered_upstream(&up, "reports", Endpoint::new("from-rust", 0)).await;
    registered_upstream(&up, "rusts", Endpoint::new("rust-1", 2)).await;

    follower
        .send(json!({ "cmd": "watch", "sub": "r", "service": "svc" }))
        .await;
    assert_eq!(follower.item("r").await, svc_json(1), "the cached value");
    up.set("svc", svc(2));
    follower.item_eq("r", &svc_json(2)).await;
    node_follower.item_eq("n", &svc_json(2)).await;
    assert_eq!(
        up.stats().watches.get("svc"),
        Some(&1),
        "one upstream watch"
    );

    served_after_quiet(&mut follower).await;
    assert_eq!(complaints(&mut leader), Vec::<Value>::new());

    unwatch(&mut follower, "r").await;
    up.set("svc", svc(3));
    node_follower.item_eq("n", &svc_json(3)).await;
    no_item(&mut follower, "r", Duration::from_millis(300)).await;
    assert_eq!(complaints(&mut leader), Vec::<Value>::new());
}

/// Leadership passes from Node to Rust and back, and the streams of both languages go on:
/// 1. A Node leader; a Rust member that may lead, and a Node follower, both watching `svc`.
/// 2. kill -9 of the Node leader: the Rust member takes over, the Node follower reconnects to it,
///    and both get the next change. A Node member that may lead and a Rust follower join and get
///    the cached value.
/// 3. kill -9 of the Rust leader: the Node member takes over (the others only follow), and the
///    Node follower, the Rust follower and the new leader itself get the next change.
///
/// Calls from both languages are served by each leader in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_passes_between_node_and_rust() {
    require_node();
    let up = upstream().await;
    up.set("svc", svc(1));
    let port = free_port();
    let mut first = node("node-leader", port, &up, "leader", &[])
        .when_ready()
        .await;
    let mut rust_any = rust("rust-any", port, &up, &[]).when_ready().await;
    let mut node_follower = node("node-follower", port, &up, "follower", &[])
        .when_ready()
        .await;
    assert!(first.status().await.0);
    assert!(!rust_any.status().await.0);
    for worker in [&mut rust_any, &mut node_follower] {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
            .await;
        assert_eq!(worker.item("s").await, svc_json(1), "{}", worker.name);
    }

    first.kill9().await;
    let (leads, _) = rust_any.new_term(0).await;
    assert!(leads, "the Rust member took over from the Node leader");
    up.set("svc", svc(2));
    for worker in [&mut rust_any, &mut node_follower] {
        worker.item_eq("s", &svc_json(2)).await;
    }
    let echoed = node_follower
        .call(json!({ "cmd": "echo", "payload": "via rust" }))
        .await;
    assert_eq!(echoed["ok"], "via rust", "{echoed}");

    let mut node_any = node("node-any", port, &up, "any", &[]).when_ready().await;
    let mut rust_follower = rust("rust-follower", port, &up, &["--role", "follower"])
        .when_ready()
        .await;
    assert!(
        !node_any.status().await.0,
        "the Node member follows the Rust leader"
    );
    for worker in [&mut node_any, &mut rust_follower] {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
            .await;
        assert_eq!(worker.item("s").await, svc_json(2), "{}", worker.name);
    }

    rust_any.kill9().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !node_any.status().await.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Node member did not take over from the Rust leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    up.set("svc", svc(3));
    for worker in [&mut node_any, &mut node_follower, &mut rust_follower] {
        worker.item_eq("s", &svc_json(3)).await;
    }
    let echoed = rust_follower
        .call(json!({ "cmd": "echo", "payload": "via node" }))
        .await;
    assert_eq!(echoed["ok"], "via node", "{echoed}");
    let echoed = node_follower
        .call(json!({ "cmd": "echo", "payload": "via node too" }))
        .await;
    assert_eq!(echoed["ok"], "via node too", "{echoed}");
}
