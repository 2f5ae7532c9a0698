//! A flood of calls the leader cannot serve does not become a flood of log lines: the leader's
//! warnings about what its followers do are limited to 10 a second, each saying how many were left
//! out. Before, 20,000 unknown-method calls wrote 20,000 WARN lines (58 MB/s).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::raw::{Raw, frame, invoke_packet};
use super::support::{Worker, free_port, upstream};
use super::{SEAM, assert_no_panics, log_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_method_flood_logs_a_few_lines() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    assert!(leader.status().await.0);
    let mut raw = Raw::registered(port, "registry").await;
    const CALLS: i64 = 20_000;
    let mut burst = Vec::new();
    for id in 0..CALLS {
        burst.extend(frame(&invoke_packet(
            100 + id,
            3000,
            "no_such_method",
            0,
            Bytes::new(),
        )));
    }
    let started = Instant::now();
    raw.send(&burst).await;
    // Every call is answered (with an `unknown_method` fault); the last answer marks the end.
    let mut kept = Vec::new();
    let last = raw
        .wait_for(Duration::from_secs(30), &mut kept, |p| {
            p.id == 100 + CALLS - 1
        })
        .await;
    let elapsed = started.elapsed();
    drop(last);
    // A status round trip after the flood: every log line of the flood has been printed by then.
    assert!(leader.status().await.0, "the leader serves on");
    let lines = leader
        .take_all(|v| v.get("log").is_some() && log_text(v).contains("call failed in the leader"));
    let left_out: u64 = lines
        .iter()
        .filter_map(|v| v["fields"]["left_out"].as_u64())
        .sum();
    eprintln!(
        "{CALLS} unknown-method calls in {elapsed:?}: {} WARN lines, {left_out} left out",
        lines.len()
    );
    let seconds = elapsed.as_secs() + 1;
    assert!(
        !lines.is_empty() && lines.len() as u64 <= 10 * (seconds + 1),
        "{} lines in {elapsed:?}",
        lines.len()
    );
    assert!(
        lines.len() as u64 + left_out <= CALLS as u64,
        "no more lines than calls"
    );
    assert_no_panics(&mut [&mut leader]);
}
