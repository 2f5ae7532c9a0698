//! `examples/redis.rs` against a real `redis-server` (the Debian package, which `.ci/run`
//! installs): the example starts its own server on a free port, N worker processes share one
//! Redis connection and one pub/sub subscription, and it checks `CLIENT LIST`, a `PUBLISH` to
//! every worker, exact `INCR` totals, a kill -9 of the leader, and a kill -9 and restart of Redis
//! itself (one resubscription for all, the publishes sent again, no stream ended). It exits 0 only
//! when every check held; this test runs it and fails with its output otherwise. Without `redis-server` the test
//! fails and says so.

use std::path::PathBuf;
use std::time::Duration;

/// The example's binary: `cargo test` builds the examples beside the test binaries.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join("redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_example_checks_out() {
    let server = std::process::Command::new("redis-server")
        .arg("--version")
        .output();
    assert!(
        server.is_ok_and(|out| out.status.success()),
        "REDIS-SERVER IS MISSING: `.ci/run` installs the Debian package redis-server"
    );
    let binary = example_binary();
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds the examples",
        binary.display()
    );
    let run = tokio::process::Command::new(&binary)
        .args(["--workers", "4"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the example ends within two minutes")
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the example failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("every check held"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}
