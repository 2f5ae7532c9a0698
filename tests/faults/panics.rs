//! The harness itself.

use serde_json::json;

use crate::SEAM;
use crate::support::{Worker, free_port, upstream};

/// The harness itself: a panic in a worker is seen (so "no panics" above means something).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_is_seen() {
    let up = upstream().await;
    let mut worker = Worker::ready("panicky", SEAM, free_port(), &up, &[]).await;
    worker.send(json!({ "cmd": "panic", "id": 1 })).await;
    let line = worker.expect(|v| v["event"] == "panic").await;
    assert!(
        line["message"]
            .as_str()
            .unwrap_or_default()
            .contains("asked to panic"),
        "{line}"
    );
    // A panic in a task does not end the process; the worker still answers.
    assert!(worker.status().await.0);
}
