//! A flood of calls the leader cannot serve does not become a flood of log lines: the leader's
//! warnings about what its followers do are limited to 10 a second, each saying how many were left
//! out. Before, 20,000 unknown-method calls wrote 20,000 WARN lines (58 MB/s).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::procfs::{PeakRss, vm_rss_kib};
use super::raw::{Raw, frame, invoke_packet, raw_request};
use super::support::{Worker, free_port, upstream};
use super::{
    SEAM, SLACK, assert_no_panics, assert_rss_within, assert_spin_clean, log_text, start_spin,
    stop_spin,
};

/// What the leader's RSS may grow by while it answers the flood.
const RSS_MARGIN_KIB: u64 = 32 * 1024;

/// 20,000 unknown-method calls sent at once on one registered connection: every one is answered
/// with a fault, the leader writes at most 10 WARN lines a second about them, its RSS stays within a
/// margin, and another follower's calls all succeed. Prints `WHY 8` with the count of WARN lines,
/// the leader's RSS before / peak / after and the other follower's spin meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_method_flood_logs_a_few_lines() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    assert!(leader.status().await.0);
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 81, 1, 3000 + SLACK.as_millis() as u64).await;
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
    let rss_before = vm_rss_kib(leader.pid);
    let peak = PeakRss::start(leader.pid);
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
    let rss_peak = peak.stop().await;
    let rss_after = vm_rss_kib(leader.pid);
    drop(last);
    // A status round trip after the flood: every log line of the flood has been printed by then.
    assert!(leader.status().await.0, "the leader serves on");
    let lines = leader.take_all(|v| {
        v.get("level").is_some() && log_text(v).contains("call failed in the leader")
    });
    let left_out: u64 = lines
        .iter()
        .filter_map(|v| v["fields"]["left_out"].as_u64())
        .sum();
    let totals = stop_spin(&mut follower, 81).await;
    eprintln!(
        "WHY 8: {CALLS} unknown-method calls sent at once on one registered connection, all \
         answered in {elapsed:?}: {} WARN lines ({left_out} counted as left out); leader VmRSS \
         {rss_before} before / {} peak ({} samples) / {rss_after} after KiB (bound: peak < \
         before + {RSS_MARGIN_KIB} KiB); the other follower's spin meanwhile: {totals}",
        lines.len(),
        rss_peak.kib,
        rss_peak.samples
    );
    assert_rss_within(rss_before, &rss_peak, RSS_MARGIN_KIB);
    assert_spin_clean(&totals);
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
    assert_no_panics(&mut [&mut leader, &mut follower]);
}

/// A peer's text inside an error is cut: a connection object whose `argLength` is a 1 MiB string
/// is refused (the connection closes) with a log line of a few hundred bytes. Before, serde's
/// message quoted the string whole, into the log and into the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_text_in_an_error_is_cut() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    let mut raw = Raw::registered(port, "registry").await;
    let long = "x".repeat(1 << 20);
    let conn =
        format!(r#"{{"type":"invoke","method":"echo","argLength":"{long}","oneway":false}}"#);
    raw.send(&raw_request(7, &conn, &[])).await;
    assert!(
        raw.closed_within(Duration::from_secs(5)).await.is_some(),
        "a bad connection object closes the connection"
    );
    assert!(leader.status().await.0, "the leader serves on");
    let lines = leader.take_all(|v| v.get("level").is_some());
    let about_it: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| log_text(v).contains("not valid JSON"))
        .collect();
    assert!(!about_it.is_empty(), "the refusal is logged: {lines:?}");
    let longest = lines.iter().map(|v| v.to_string().len()).max().unwrap_or(0);
    eprintln!(
        "a 1 MiB string where a number belongs: {} log lines, the longest {longest} bytes: {}",
        lines.len(),
        about_it[0]
    );
    assert!(longest < 2048, "a log line of {longest} bytes");
}
