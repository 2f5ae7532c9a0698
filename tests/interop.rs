//! Rust and Node processes in one cluster: the original package's followers join a Rust leader
//! that speaks its codec (`serialize-json`) with auth off, and their calls cross.
//!
//! The Node side is `tests/interop/follower.js`, on the npm package pinned in
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

/// The Node follower, started against `port`, and its JSON lines as they come.
struct NodeFollower {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: Vec<Value>,
}

impl NodeFollower {
    fn start(port: u16) -> NodeFollower {
        let mut child = Command::new("node")
            .arg(interop_dir().join("follower.js"))
            .arg(port.to_string())
            .current_dir(interop_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped stdout");
        NodeFollower {
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
                .unwrap_or_else(|_| panic!("no {what} from the Node follower: {:?}", self.seen))
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

    /// Waits for the process to exit successfully.
    async fn finish(mut self) -> Vec<Value> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the Node follower exits within the bound")
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

    let mut node = NodeFollower::start(port);
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
