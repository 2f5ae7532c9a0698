//! Another user's process is turned away before it sends a byte: over TCP the kernel's socket
//! tables name the connecting process's user at accept, and over the Unix socket the private
//! directory keeps it from reaching the socket at all.
//!
//! Running a process as another user takes root; elsewhere these tests say so and check nothing.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;

use crate::support::{Via, WAIT, Worker, free_port, runtime_dir, upstream};
use crate::{SEAM, SLACK, assert_no_panics, expect_log, start_spin, stop_spin};

/// The user the intruder runs as: `nobody`.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("NOT CHECKED: running a process as another user needs root");
    }
    root
}

/// Runs `script` in `bash` as [`NOBODY`]; returns its stdout and how long it ran.
async fn as_nobody(script: &str) -> (String, Duration) {
    let started = Instant::now();
    let output = tokio::time::timeout(
        WAIT,
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("bash ends within the bound")
    .expect("bash runs as nobody");
    (
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        started.elapsed(),
    )
}

/// A process of another user that connects to the leader's TCP port is closed at accept (it reads
/// end-of-file at once), with a log line naming its uid; a follower of this user calls on
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_tcp_connection_is_closed_at_accept() {
    if !is_root() {
        return;
    }
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 41, 1, 3000 + SLACK.as_millis() as u64).await;
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 2; timeout 10 cat <&3 >/dev/null; echo eof"
    );
    let (out, took) = as_nobody(&script).await;
    eprintln!("uid {NOBODY} on the TCP port: `{out}` after {took:?}");
    assert_eq!(out, "eof", "the connection is closed, not left open");
    assert!(
        took < SLACK,
        "closed at once, not at the register timeout: {took:?}"
    );
    expect_log(
        &mut leader,
        &["closing a connection of another user", &NOBODY.to_string()],
    )
    .await;
    let spin = stop_spin(&mut follower, 41).await;
    assert_eq!(spin["errors"], serde_json::json!({}), "{spin}");
    assert_no_panics(&mut [&mut leader, &mut follower]);
}

/// Over the Unix socket, a process of another user cannot even reach the socket: it lies in a
/// directory of mode 0700. A follower of this user joins through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_reach_the_unix_socket() {
    if !is_root() {
        return;
    }
    let up = upstream().await;
    let port = free_port();
    let unix = Via {
        seam: SEAM,
        transport: "unix",
    };
    let mut leader = Worker::ready("leader", unix, port, &up, &["--log", "warn"]).await;
    let dir = runtime_dir();
    let mode = std::fs::metadata(&dir)
        .expect("the runtime dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    let socket = dir.join(format!("port-{port}.sock"));
    assert!(socket.exists(), "{}", socket.display());
    // bash cannot open a Unix socket itself; whether it can see the file is what counts.
    let script = format!(
        "test -e {} && echo reachable || echo unreachable",
        socket.display()
    );
    let (out, _) = as_nobody(&script).await;
    eprintln!("uid {NOBODY} looking for {}: {out}", socket.display());
    assert_eq!(out, "unreachable");
    let mut follower = Worker::ready("follower", unix, port, &up, &[]).await;
    let (is_leader, _) = follower.status().await;
    assert!(!is_leader);
    assert_no_panics(&mut [&mut leader, &mut follower]);
}
