//! Planned leaves: a process that gets SIGTERM closes its client; a leader hands its followers over
//! to a successor before its real client stops.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use cluster_client_registry_fixture::RegistryServer;
use serde_json::{Value, json};

use crate::support::{Worker, endpoints, free_port, upstream};
use crate::{SEAM, assert_no_panics, stop_spin};

/// The spin of every member: `lookup` calls, which are not idempotent, so none is retried.
const SPIN: u64 = 70;

/// Starts a member, subscribes it to `svc`, and starts its spin of lookups.
async fn member(name: &str, port: u16, up: &RegistryServer) -> Worker {
    let mut worker = Worker::ready(name, SEAM, port, up, &["--response-ms", "3000"]).await;
    worker
        .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
        .await;
    worker.item("s").await;
    worker
        .send(json!({ "cmd": "spin", "id": SPIN, "payload": "svc", "gap_ms": 2, "lookup": true }))
        .await;
    worker
}

/// The versions a worker's stream delivered (each item is `[{"host":"v","port":version}]`).
fn versions(worker: &mut Worker) -> BTreeSet<u64> {
    worker
        .take_all(|v| v["sub"] == "s" && v.get("item").is_some())
        .iter()
        .filter_map(|v| v["item"][0]["port"].as_u64())
        .collect()
}

/// The calls of a spin that failed, from the lines it printed as they failed, by kind.
fn failures(worker: &mut Worker) -> Vec<Value> {
    worker.take_all(|v| v["spin"] == SPIN && v.get("kind").is_some())
}

/// Asserts that `seen` holds every version from its first to its last: none was lost.
fn assert_contiguous(name: &str, seen: &BTreeSet<u64>) {
    let (Some(first), Some(last)) = (seen.first(), seen.last()) else {
        panic!("{name}: no item");
    };
    let missing: Vec<u64> = (*first..=*last).filter(|v| !seen.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "{name}: versions {first}..={last}, missing {missing:?}"
    );
}

/// A rolling restart: three members, each in turn (the leader first) gets SIGTERM and is started
/// again, while every member calls the leader (non-idempotent lookups, every 2 ms) and watches a
/// service whose version changes every 10 ms. No call of a member that stays fails, and no member's
/// stream misses a version: each leader hands its followers to a successor before it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_fails_no_call_and_loses_no_item() {
    let up = Arc::new(upstream().await);
    up.set("svc", endpoints(&[("v", 1)]));
    let port = free_port();
    let mut members = Vec::new();
    for name in ["m0", "m1", "m2"] {
        members.push(member(name, port, &up).await);
    }
    assert!(members[0].status().await.0, "m0 leads");

    let publishing = Arc::new(AtomicBool::new(true));
    let version = Arc::new(AtomicU16::new(1));
    let publisher = {
        let (up, publishing, version) = (
            Arc::clone(&up),
            Arc::clone(&publishing),
            Arc::clone(&version),
        );
        tokio::spawn(async move {
            // At most 3,000 versions (30 s), whatever happens.
            for _ in 0..3000 {
                if !publishing.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                let next = version.fetch_add(1, Ordering::Relaxed) + 1;
                up.set("svc", endpoints(&[("v", next)]));
            }
        })
    };

    let mut report = Vec::new();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut leaving = members.remove(0);
        let (was_leader, _) = leaving.status().await;
        leaving.signal("TERM").await;
        leaving.expect(|v| v["event"] == "terminating").await;
        // Its own calls end with `closed` once it closes; every other failure counts.
        let failed: Vec<Value> = failures(&mut leaving)
            .into_iter()
            .filter(|f| f["kind"] != "closed")
            .collect();
        let seen = versions(&mut leaving);
        assert_contiguous(&leaving.name, &seen);
        assert!(failed.is_empty(), "{} (leaving): {failed:?}", leaving.name);
        assert_no_panics(&mut [&mut leaving]);
        report.push(format!(
            "round {round}: {} (leader: {was_leader}) left having seen versions {:?}..={:?}",
            leaving.name,
            seen.first(),
            seen.last()
        ));
        let name = leaving.name.clone();
        let status = leaving.exit().await;
        assert!(status.success(), "{name}: {status}");
        members.push(member(&format!("m{}", round + 3), port, &up).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    publishing.store(false, Ordering::Relaxed);
    let _ = publisher.await;

    let leaders = {
        let mut n = 0;
        for worker in &mut members {
            n += usize::from(worker.status().await.0);
        }
        n
    };
    assert_eq!(leaders, 1, "one leader after the restart");
    for worker in &mut members {
        let totals = stop_spin(worker, SPIN).await;
        let failed = failures(worker);
        let seen = versions(worker);
        report.push(format!(
            "{}: spin {totals}, versions {:?}..={:?} ({} seen)",
            worker.name,
            seen.first(),
            seen.last(),
            seen.len()
        ));
        assert_eq!(totals["errors"], json!({}), "{}: {failed:?}", worker.name);
        assert_contiguous(&worker.name, &seen);
    }
    eprintln!(
        "rolling restart, {} versions published:\n  {}",
        version.load(Ordering::Relaxed),
        report.join("\n  ")
    );
    let mut refs: Vec<&mut Worker> = members.iter_mut().collect();
    assert_no_panics(&mut refs);
}
