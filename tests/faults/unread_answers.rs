//! A follower that asks for large answers and never reads them: the leader holds at most 4 MiB of
//! answers for it, then closes its connection as too slow, instead of holding every answer (before,
//! 1.5 GiB in 5 s).

use std::time::Duration;

use bytes::BytesMut;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::procfs::{PeakRss, vm_rss_kib};
use crate::raw::{Raw, frame, invoke_packet, push};
use crate::support::{WAIT, Worker, free_port, upstream};
use crate::{
    SEAM, SLACK, assert_no_panics, assert_rss_within, assert_spin_clean, expect_log, start_spin,
    stop_spin,
};

/// The payload of each `echo`: 32 KiB (the upstream registry caps a request line at 64 KiB).
const PAYLOAD: usize = 32 * 1024;

/// How many calls the connection sends: 25 MiB of answers, far past what the leader holds for one
/// follower (4 MiB) and what the kernel buffers on loopback.
const CALLS: i64 = 800;

/// What the leader's RSS may grow by: the calls in flight hold their arguments (up to the whole
/// 25 MiB sent, in a request and in the upstream line), and 4 MiB of answers wait for the follower.
const RSS_MARGIN_KIB: u64 = 96 * 1024;

/// Reads until the leader closes the connection; the bytes read, or `None` if it stays open.
async fn read_until_closed(raw: &mut Raw, within: Duration) -> Option<u64> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    // Bounded: 25 MiB of answers is at most this many reads of one byte or more.
    for _ in 0..(CALLS as usize * PAYLOAD) {
        match tokio::time::timeout_at(deadline, raw.stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(total),
            Ok(Ok(n)) => total += n as u64,
        }
    }
    None
}

/// A registered connection sends 800 `echo` calls with a 32 KiB payload at once and never reads:
/// the leader closes it as too slow, most answers are dropped with it rather than held, its RSS
/// stays within a margin, and another follower's calls all succeed. Prints `WHY 2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_reads_its_answers_is_closed() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    assert!(leader.status().await.0);
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 21, 1, 3000 + SLACK.as_millis() as u64).await;
    let rss_before = vm_rss_kib(leader.pid);
    let peak = PeakRss::start(leader.pid);

    let mut raw = Raw::registered(port, "registry").await;
    let mut app = BytesMut::new();
    push(&mut app, &"x".repeat(PAYLOAD));
    let app = app.freeze();
    let mut calls = Vec::new();
    for id in 0..CALLS {
        calls.extend(frame(&invoke_packet(
            100 + id,
            5000,
            "echo",
            1,
            app.clone(),
        )));
    }
    let answers_bytes = CALLS as u64 * (PAYLOAD as u64 + 24);
    let started = Instant::now();
    // The leader reads every call (or closes the connection first); nothing is read here.
    raw.send(&calls).await;
    expect_log(&mut leader, &["not reading its answers"]).await;
    let rss_peak = peak.stop().await;
    // Only now: what the leader had sent before it closed the connection.
    let read = read_until_closed(&mut raw, WAIT)
        .await
        .expect("the leader closed the connection that did not read");
    let closed_after = started.elapsed();
    let rss_after = vm_rss_kib(leader.pid);
    let totals = stop_spin(&mut follower, 21).await;
    eprintln!(
        "WHY 2: a registered connection sends {CALLS} echo calls with a {PAYLOAD}-byte payload \
         (over {answers_bytes} bytes of answers) and never reads: closed as too slow, {read} \
         bytes could be read from it once closed (closed within {closed_after:?}); leader VmRSS \
         {rss_before} before / {} peak ({} samples) / {rss_after} after KiB (bound: peak < \
         before + {RSS_MARGIN_KIB} KiB); the other follower's spin meanwhile: {totals}",
        rss_peak.kib, rss_peak.samples
    );
    assert!(
        read < answers_bytes / 2,
        "most answers were dropped with the connection, not held for it: {read} bytes read"
    );
    assert_rss_within(rss_before, &rss_peak, RSS_MARGIN_KIB);
    assert_spin_clean(&totals);
    let answer = follower
        .call(json!({ "cmd": "echo", "payload": "after" }))
        .await;
    assert_eq!(answer["ok"], "after", "{answer}");
    assert_no_panics(&mut [&mut leader, &mut follower]);
}
