//! The bytes a leader buffers for all its followers together, under one budget
//! (`max_buffered_bytes`): large frames that have begun to arrive, and output not yet written. A
//! frame must also arrive whole within `frame_timeout` of its first bytes. (That output counts
//! against the same budget is unit-tested with the writer, in `cluster-client/src/io/writer.rs`.)

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::procfs::{PeakRss, vm_rss_kib};
use crate::raw::{Raw, header};
use crate::support::{WAIT, Worker, free_port, upstream};
use crate::{SEAM, SLACK, assert_no_panics, expect_log, start_spin, stop_spin};

/// The budget of the leader in these tests: room for two 8 MiB frames, not three.
const BUDGET: usize = 20_000_000;

/// A frame of the largest size (8 MiB) whose header and first 6 MiB are sent.
fn cut_frame(id: i64) -> Vec<u8> {
    let conn = r#"{"type":"invoke","method":"echo","argLength":1}"#;
    let app_len = (8 << 20) - 24 - conn.len();
    let mut out = header(1, 0, id, 3000, conn.len() as i32, app_len as i32);
    out.extend_from_slice(conn.as_bytes());
    out.resize(6 << 20, 7);
    out
}

/// 20 registered connections each send 6 MiB of an 8 MiB frame and stall (before the budget, 500
/// of them held 3 GiB for 60 s). The budget lets two frames in and closes the other 18 at once;
/// the frame deadline closes the two. The leader's RSS stays within the budget, and another
/// follower's calls all succeed throughout. Prints `WHY 5` with the leader's RSS before, at its
/// peak (sampled throughout) and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_cut_short_are_bounded_in_bytes_and_in_time() {
    let up = upstream().await;
    let port = free_port();
    let budget = BUDGET.to_string();
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &[
            "--log",
            "warn",
            "--max-buffered-bytes",
            &budget,
            "--frame-ms",
            "1500",
        ],
    )
    .await;
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 31, 1, 3000 + SLACK.as_millis() as u64).await;
    let rss_before = vm_rss_kib(leader.pid);
    let peak = PeakRss::start(leader.pid);

    let mut raws = Vec::new();
    for _ in 0..20 {
        raws.push(Raw::registered(port, "registry").await);
    }
    let started = Instant::now();
    for (id, raw) in (1..).zip(raws.iter_mut()) {
        raw.send(&cut_frame(id)).await;
    }
    // "At once": before the frame deadline (1.5 s from a frame's first bytes, all sent after
    // `started`) can have closed any of them, whatever the load.
    let before_the_deadline = started + Duration::from_millis(1400);
    let mut closed_at_once = 0;
    for raw in &mut raws {
        let left = before_the_deadline.saturating_duration_since(Instant::now());
        if raw.closed_within(left).await.is_some() {
            closed_at_once += 1;
        }
    }
    // A reading at the moment the two admitted frames are held, besides the sampled ones.
    let rss_held = vm_rss_kib(leader.pid);
    expect_log(&mut leader, &["does not fit in the 20000000 bytes"]).await;
    let mut closed = 0;
    for raw in &mut raws {
        if raw.closed_within(WAIT).await.is_some() {
            closed += 1;
        }
    }
    let all_closed_after = started.elapsed();
    expect_log(&mut leader, &["did not arrive whole in time"]).await;
    let sampled = peak.stop().await;
    let rss_peak = sampled.kib.max(rss_held);
    let rss_after = vm_rss_kib(leader.pid);
    let spin = stop_spin(&mut follower, 31).await;
    eprintln!(
        "WHY 5: 20 registered connections each send 6 MiB of an 8 MiB frame and stall (budget \
         {BUDGET} B, frame deadline 1.5 s): {closed_at_once} closed at once, all {closed} closed \
         after {all_closed_after:?}; leader VmRSS {rss_before} before / {rss_peak} peak ({} \
         samples) / {rss_after} after KiB (bound: peak < before + budget + 8 MiB); the other \
         follower's spin meanwhile: {spin}",
        sampled.samples + 1
    );
    assert_eq!(
        closed_at_once, 18,
        "two frames fit in the budget, not three"
    );
    assert_eq!(closed, 20, "every connection is closed in the end");
    assert!(
        all_closed_after < Duration::from_millis(1500 * 3 / 2) + 2 * SLACK,
        "the stalled frames are closed by the deadline"
    );
    assert!(
        rss_peak < rss_before + (BUDGET as u64 / 1024) + 8 * 1024,
        "leader RSS {rss_before} → {rss_peak} KiB"
    );
    assert_eq!(spin["errors"], json!({}), "the other follower: {spin}");
    assert!(spin["ok"].as_u64().unwrap_or(0) > 0, "{spin}");
    assert_no_panics(&mut [&mut leader, &mut follower]);
}
