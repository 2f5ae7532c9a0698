//! Support of the end-to-end tests (`tests/cluster.rs`, `tests/faults/`): the upstream registry
//! in the test process, worker processes (`cc-worker`) driven over stdin/stdout, and the
//! scenarios that run through both seams.

#![allow(dead_code)]

pub mod scenarios;

use std::process::Stdio;
use std::time::Duration;

use cluster_client_registry_fixture::{Endpoint, RegistryServer};
pub use cluster_client_workspace::free_port;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The longest any single expectation waits.
pub const WAIT: Duration = Duration::from_secs(15);

/// The upstream registry, served from the test process.
pub async fn upstream() -> RegistryServer {
    RegistryServer::start("127.0.0.1:0")
        .await
        .expect("upstream registry starts")
}

/// Endpoints from `(host, port)` pairs.
pub fn endpoints(list: &[(&str, u16)]) -> Vec<Endpoint> {
    list.iter().map(|(h, p)| Endpoint::new(*h, *p)).collect()
}

/// Endpoints from `(host, port)` pairs, as a worker prints them.
pub fn endpoints_json(list: &[(&str, u16)]) -> Value {
    serde_json::to_value(endpoints(list)).expect("endpoints serialize")
}

/// Waits until the upstream sees `n` live connections, within [`WAIT`].
pub async fn live_connections(up: &RegistryServer, n: usize) {
    assert!(
        up.wait_for_live_connections(n, WAIT).await,
        "upstream should see {n} live connections, sees {:?}",
        up.stats()
    );
}

/// Waits until the upstream holds `n` watches of `service`, within [`WAIT`].
pub async fn watches(up: &RegistryServer, service: &str, n: usize) {
    eventually(&format!("{n} upstream watches of {service}"), || async {
        (up.stats().watches.get(service).copied().unwrap_or(0) == n).then_some(())
    })
    .await;
}

/// How a worker reaches the cluster: through which seam of `cc-worker` (`generated` or `manual`) and
/// over which transport (`tcp` or `unix`). A seam's name alone means TCP.
#[derive(Debug, Clone, Copy)]
pub struct Via {
    pub seam: &'static str,
    pub transport: &'static str,
}

impl From<&'static str> for Via {
    fn from(seam: &'static str) -> Via {
        Via {
            seam,
            transport: "tcp",
        }
    }
}

/// One `cc-worker` process.
pub struct Worker {
    pub name: String,
    pub pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    backlog: Vec<Value>,
    next_id: u64,
}

impl Worker {
    /// Starts a worker on `port` with the given seam and extra flags; does not wait for it to be ready.
    pub fn spawn(
        name: &str,
        via: impl Into<Via>,
        port: u16,
        upstream: &RegistryServer,
        extra: &[&str],
    ) -> Worker {
        Worker::spawn_with_upstream(name, via, port, &upstream.local_addr().to_string(), extra)
    }

    /// [`spawn`](Self::spawn), with the upstream's address (where nothing may listen yet).
    pub fn spawn_with_upstream(
        name: &str,
        via: impl Into<Via>,
        port: u16,
        upstream: &str,
        extra: &[&str],
    ) -> Worker {
        let via = via.into();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cc-worker"));
        command
            .args([
                "--seam",
                via.seam,
                "--transport",
                via.transport,
                "--port",
                &port.to_string(),
                "--upstream",
                upstream,
                "--runtime-dir",
                &runtime_dir().to_string_lossy(),
            ])
            .args(extra);
        Worker::run(name, command)
    }

    /// Runs `command` as a worker: a process that takes commands on stdin and prints JSON lines
    /// the way `cc-worker` does (the Node worker of `tests/interop/` does too).
    pub fn run(name: &str, mut command: Command) -> Worker {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("{name} starts: {err}"));
        let pid = child.id().expect("a running child has a pid");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "raw": line }));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Worker {
            name: name.to_owned(),
            pid,
            child,
            stdin,
            lines,
            backlog: Vec::new(),
            next_id: 1,
        }
    }

    /// Waits for this worker's `ready` event; it must not fail.
    pub async fn when_ready(mut self) -> Worker {
        let event = self
            .expect(|v| v["event"] == "ready" || v["event"] == "failed")
            .await;
        assert_eq!(
            event["event"], "ready",
            "{} did not start: {event}",
            self.name
        );
        self
    }

    /// Starts a worker and waits for its `ready` (or `failed`) event.
    pub async fn start(
        name: &str,
        via: impl Into<Via>,
        port: u16,
        upstream: &RegistryServer,
        extra: &[&str],
    ) -> (Worker, Value) {
        let mut worker = Worker::spawn(name, via, port, upstream, extra);
        let event = worker
            .expect(|v| v["event"] == "ready" || v["event"] == "failed")
            .await;
        (worker, event)
    }

    /// Starts a worker that must become ready.
    pub async fn ready(
        name: &str,
        via: impl Into<Via>,
        port: u16,
        upstream: &RegistryServer,
        extra: &[&str],
    ) -> Worker {
        Worker::spawn(name, via, port, upstream, extra)
            .when_ready()
            .await
    }

    /// Sends one command line.
    pub async fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = command.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("worker reads stdin");
        stdin.flush().await.expect("flush");
    }

    /// Sends a command with a fresh `id` and waits for the answer with that id.
    pub async fn call(&mut self, mut command: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        self.send(command).await;
        self.expect(|v| v["id"] == id).await
    }

    /// Waits for the first line matching `pred` (from the backlog or new), within [`WAIT`].
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(WAIT, pred).await.unwrap_or_else(|| {
            panic!(
                "{}: nothing matched within {WAIT:?}; backlog: {:?}",
                self.name, self.backlog
            )
        })
    }

    /// Waits up to `wait` for a line matching `pred`; lines that do not match are kept.
    pub async fn expect_within(
        &mut self,
        wait: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return Some(self.backlog.remove(i));
        }
        let deadline = Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if pred(&v) => return Some(v),
                Ok(Some(v)) => self.backlog.push(v),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next subscription item of `sub`.
    pub async fn item(&mut self, sub: &str) -> Value {
        self.expect(|v| v["sub"] == sub && v.get("item").is_some())
            .await["item"]
            .clone()
    }

    /// Waits for an item of `sub` equal to `want`, skipping earlier ones.
    pub async fn item_eq(&mut self, sub: &str, want: &Value) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let item = self.item(sub).await;
            if &item == want {
                return;
            }
        }
        panic!("{}: {sub} never delivered {want}", self.name);
    }

    /// Takes every line received so far (without waiting) that matches `pred`, in the order they
    /// came; the other lines stay for later expectations.
    pub fn take_all(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            self.backlog.push(line);
        }
        let (taken, kept) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(|v| pred(v));
        self.backlog = kept;
        taken
    }

    /// The `{"event":"panic"}` lines this worker printed so far.
    pub fn panics(&mut self) -> Vec<Value> {
        self.take_all(|v| v["event"] == "panic")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks whether this worker leads, and its epoch.
    pub async fn status(&mut self) -> (bool, u64) {
        let status = self.call(json!({ "cmd": "status" })).await;
        (
            status["leader"].as_bool().expect("leader flag"),
            status["epoch"].as_u64().expect("epoch"),
        )
    }

    /// This worker's status (leader flag, epoch) once it reports a term after `epoch`, within
    /// [`WAIT`].
    pub async fn new_term(&mut self, epoch: u64) -> (bool, u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status().await;
            if status.1 > epoch {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no term after {epoch}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -9` and reap.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("SIGKILL delivered");
        let _ = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("killed worker exits");
    }

    /// Sends a signal (`STOP`, `CONT`) to this worker's process.
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    /// Closes stdin and waits for a clean exit.
    pub async fn exit(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("worker exits when stdin closes")
            .expect("wait")
    }
}

/// Where this test run's workers keep their cluster files (secrets, Unix sockets and their locks,
/// named by port), instead of the user's runtime directory: in cargo's scratch directory for
/// integration tests (which `cargo clean` empties), or, where that path is too long for a Unix
/// socket's address, in the system's temporary directory.
pub fn runtime_dir() -> std::path::PathBuf {
    let name = format!("cluster-client-tests-{}", std::process::id());
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
    // A socket's address holds 107 bytes; `/port-65535.sock` takes 16 of them.
    if scratch.as_os_str().len() <= 90 {
        scratch
    } else {
        std::env::temp_dir().join(name)
    }
}

/// Waits until `f` returns `Some`, polling every 20 ms, within [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
