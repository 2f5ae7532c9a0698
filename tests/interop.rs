//! Rust and Node processes in one cluster, with the Node package's codec (`serialize-json`) and
//! auth off: Node followers of a Rust leader, and Rust followers of a Node leader.
//!
//! The Node side is `tests/interop/follower.js` and `tests/interop/leader.js`, on the npm package
//! pinned in
//! `tests/interop/package-lock.json` (`.ci/run` runs `npm ci` there). Without `node`, or without
//! that install, the test fails and says what to do: it never passes silently.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use support::{WAIT, Worker, endpoints, endpoints_json, free_port, upstream, watches};
use tokio::io::AsyncBufReadExt;
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

/// A Node process of `tests/interop/`, started against `port`, and its JSON lines as they come.
struct NodeProcess {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: Vec<Value>,
}

impl NodeProcess {
    /// Runs `script` with the port; its stdin stays open until [`finish`](Self::finish).
    fn start(script: &str, port: u16) -> NodeProcess {
        let mut child = Command::new("node")
            .arg(interop_dir().join(script))
            .arg(port.to_string())
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        NodeProcess {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// Waits for a line matching `pred`, within [`WAIT`].
    async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {what} from the Node process: {:?}", self.seen))
                .expect("its stdout reads")
                .unwrap_or_else(|| {
                    panic!("the Node follower ended before {what}: {:?}", self.seen)
                });
            let value: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| json!({ "raw": line }));
            self.seen.push(value.clone());
            if pred(&value) {
                return value;
            }
        }
    }

    /// Closes its stdin and waits for it to exit successfully.
    async fn finish(mut self) -> Vec<Value> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the Node process exits within the bound")
            .expect("wait");
        assert!(
            status.success(),
            "the Node follower failed: {:?}",
            self.seen
        );
        self.seen
    }
}

/// The line about `method`.
fn outcome<'a>(lines: &'a [Value], method: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| line["method"] == method)
        .unwrap_or_else(|| panic!("no outcome of {method}: {lines:?}"))
}

/// A Node follower calls a Rust leader: a string with every character serialize-json escapes
/// comes back whole; a list of structs comes back as JavaScript objects; a method the leader does
/// not have fails as a JavaScript error with the fault's name, message and code. Its subscription
/// (only `reg`, no method: the leader takes its trait's first subscribe method, `watch`) gets the
/// current value, then a change, then it unsubscribes; the leader serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_follower_calls_a_rust_leader() {
    require_node();
    let up = upstream().await;
    up.set("svc", endpoints(&[("10.0.0.7", 8080)]));
    let port = free_port();
    let mut leader = Worker::ready(
        "rust-leader",
        "generated",
        port,
        &up,
        &["--codec", "serialize-json", "--no-auth"],
    )
    .await;
    assert!(leader.status().await.0, "the Rust worker leads");

    let mut node = NodeProcess::start("follower.js", port);
    node.expect("ready", |line| line["event"] == "ready").await;
    let first = node
        .expect("the first item", |line| line["seen"] == 1)
        .await;
    assert_eq!(first["item"], endpoints_json(&[("10.0.0.7", 8080)]));
    up.set("svc", endpoints(&[("10.0.0.8", 9090)]));
    let second = node
        .expect("the second item", |line| line["seen"] == 2)
        .await;
    assert_eq!(second["item"], endpoints_json(&[("10.0.0.8", 9090)]));
    node.expect("closed", |line| line["event"] == "closed")
        .await;
    let lines = node.finish().await;
    eprintln!("the Node follower printed: {lines:?}");
    // Its unSubscribe ended the leader's upstream watch.
    watches(&up, "svc", 0).await;
    assert_eq!(outcome(&lines, "echo")["ok"], "héllo | wörld ^ 100%");
    assert_eq!(
        outcome(&lines, "lookup")["ok"],
        endpoints_json(&[("10.0.0.7", 8080)])
    );
    let error = &outcome(&lines, "nope")["error"];
    assert_eq!(error["name"], "unknown_method", "{error}");
    assert_eq!(error["code"], "unknown_method", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{error}"
    );
    // The Rust leader serves on, and a Rust follower of the same codec joins beside the Node one.
    let mut follower = Worker::ready(
        "rust-follower",
        "generated",
        port,
        &up,
        &["--codec", "serialize-json", "--no-auth"],
    )
    .await;
    let answer = follower
        .call(json!({ "cmd": "echo", "payload": "from rust" }))
        .await;
    assert_eq!(answer["ok"], "from rust");
}

/// A Rust follower calls a Node leader (`tests/interop/leader.js`): its registration is accepted,
/// its arguments and results cross both ways; a JavaScript error that its error type cannot hold
/// is a typed `codec` error, and the follower calls on; its subscription gets the Node client's
/// item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_follower_calls_a_node_leader() {
    require_node();
    let up = upstream().await;
    let port = free_port();
    let mut node = NodeProcess::start("leader.js", port);
    node.expect("ready", |line| line["event"] == "ready").await;
    let mut follower = Worker::ready(
        "rust-follower",
        "generated",
        port,
        &up,
        &[
            "--role",
            "follower",
            "--codec",
            "serialize-json",
            "--no-auth",
        ],
    )
    .await;
    assert!(!follower.status().await.0);
    let echoed = follower
        .call(json!({ "cmd": "echo", "payload": "hi | there ^ 100% +" }))
        .await;
    assert_eq!(echoed["ok"], "hi | there ^ 100% +", "{echoed}");
    let found = follower
        .call(json!({ "cmd": "lookup", "service": "svc" }))
        .await;
    assert_eq!(
        found["ok"],
        endpoints_json(&[("10.0.0.9", 7000)]),
        "{found}"
    );
    // The registry's error type is an enum; a JavaScript error (stack, name, message, code) is
    // not one of its variants.
    let failed = follower
        .call(json!({ "cmd": "lookup", "service": "missing" }))
        .await;
    assert_eq!(failed["kind"], "codec", "{failed}");
    let again = follower
        .call(json!({ "cmd": "echo", "payload": "after" }))
        .await;
    assert_eq!(again["ok"], "after", "{again}");
    // A subscription: the Node leader's push names no method; the follower finds the topic by
    // its key.
    follower
        .send(json!({ "cmd": "watch", "sub": "s", "service": "abc" }))
        .await;
    assert_eq!(follower.item("s").await, endpoints_json(&[("sub.abc", 1)]));
    node.finish().await;
}
