//! Only processes that hold the cluster secret join, and a follower joins only a leader that proves
//! it: a wrong secret is refused while the leader serves on; a squatter that accepts every
//! registration is refused by the follower with an error naming it; a secret file others may read is
//! refused with the command that fixes it. Before, any local process could join, and a squatter that
//! answered `register_channel` with success received every call of the followers.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::raw::{Foreign, ForeignServer};
use super::support::{Worker, free_port, upstream};
use super::{SEAM, assert_no_panics, expect_log};

const SECRET: &str = "the secret of the cluster under test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_secret_join() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &["--log", "warn", "--secret", SECRET],
    )
    .await;
    assert!(leader.status().await.0);

    // Another secret: each side finds the other's proof wrong. The follower, which checks first,
    // refuses the leader with a typed error; the leader logs the follower that never proved.
    let (_w, event) = Worker::start(
        "stranger",
        SEAM,
        port,
        &up,
        &["--secret", "another secret", "--max-wait-ms", "2000"],
    )
    .await;
    eprintln!("another secret: {event}");
    assert_eq!(event["event"], "failed", "{event}");
    assert_eq!(event["kind"], "foreign_peer", "{event}");
    let error = event["error"].as_str().expect("a message");
    assert!(
        error.contains("could not prove the cluster secret: its proof is of another secret"),
        "{error}"
    );
    expect_log(
        &mut leader,
        &["did not prove the cluster secret", "auth_failed"],
    )
    .await;

    // Auth off in the follower, on in the leader: refused as well, saying why.
    let (_w, event) = Worker::start("no-auth", SEAM, port, &up, &["--no-auth"]).await;
    assert_eq!(event["kind"], "refused", "{event}");
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|e| e.contains("auth_required")),
        "{event}"
    );

    // The same secret joins, and the leader served on throughout.
    let mut member = Worker::ready("member", SEAM, port, &up, &["--secret", SECRET]).await;
    let answer = member.call(json!({ "cmd": "echo", "payload": "in" })).await;
    assert_eq!(answer["ok"], "in", "{answer}");
    assert!(leader.status().await.0, "the leader serves on");
    assert_no_panics(&mut [&mut leader, &mut member]);
}

/// A squatter on the port that answers every `register_channel` with success (and would answer every
/// call): the follower refuses it, since it cannot prove the cluster secret, and `create()` fails
/// with a typed `foreign_peer` error naming the port; no real client is built. Prints `WHY 9` with
/// that error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatter_is_refused_by_its_followers() {
    let up = upstream().await;
    let squatter = ForeignServer::start(Foreign::Squatter(b"")).await;
    let (_w, event) = Worker::start(
        "victim",
        SEAM,
        squatter.port,
        &up,
        &["--connect-ms", "500", "--max-wait-ms", "1000"],
    )
    .await;
    let upstream_connections = up.stats().total_connections;
    eprintln!(
        "WHY 9: a squatter on port {} answers register_channel with success: the follower got \
         {{event: {}, kind: {}, error: {}}} (the squatter accepted {} connection(s); upstream \
         connections made: {upstream_connections})",
        squatter.port,
        event["event"],
        event["kind"],
        event["error"],
        squatter.accepted()
    );
    assert_eq!(event["event"], "failed", "{event}");
    assert_eq!(event["kind"], "foreign_peer", "{event}");
    let error = event["error"].as_str().expect("a message");
    assert!(
        error.contains(&format!("port {}", squatter.port))
            && error.contains("could not prove the cluster secret"),
        "names the port and what it found: {error}"
    );
    assert_eq!(upstream_connections, 0, "no real client was built");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_file_others_may_read_is_refused() {
    let up = upstream().await;
    let port = free_port();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let dir = scratch.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = dir.join(format!("port-{port}.secret"));
    std::fs::write(&file, [7u8; 32]).expect("written");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let dir_text = dir.to_string_lossy().into_owned();
    let (_w, event) = Worker::start("loose", SEAM, port, &up, &["--runtime-dir", &dir_text]).await;
    eprintln!("a loose secret file: {event}");
    assert_eq!(event["kind"], "auth", "{event}");
    let error = event["error"].as_str().expect("a message");
    assert!(
        error.contains("mode 644") && error.contains(&format!("chmod 600 {}", file.display())),
        "says how to fix it: {error}"
    );
}
