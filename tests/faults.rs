//! Faults and bad input, in real processes: nothing is lost and nothing hangs.
//!
//! - `leader_churn`: `kill -9` of the leader 20 times while followers call and hold subscriptions.
//! - `frozen_leader`: a `SIGSTOP`ped leader; recovery after `SIGCONT`, then after `kill -9`.
//! - `follower_killed_mid_call`: the leader drops the connection and the subscriptions of a follower
//!   killed while its call runs; the other followers do not notice.
//! - `bad_input_on_the_leader_port`, `caps_are_enforced`: a raw socket breaking the protocol.
//! - `foreign_process_on_the_port`: `create()` fails with a typed error that says what it found.
//! - `a_panicking_worker_is_seen`: the "no process panics" checks above can fail.
//!
//! Request ids (wrap-around with calls pending, late answers after a timeout or a reconnect) are
//! unit-tested in `cluster-client/src/follower/tests.rs`; `frozen_leader` checks that concurrent
//! calls after a reconnect each get their own answer.
//!
//! Every wait is bounded in time and every loop in count; only loopback is used, on free ports; only
//! the processes a test started are ended, by their id. Timing assertions are correctness bounds
//! (a deadline plus slack), never speed.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_client::Codec;
use cluster_client::protocol::{ConnObject, Packet, args::push_arg};
use cluster_client::transcode::Transcode;
use cluster_client_workspace::registry::{Endpoint, RegistryServer};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use support::faults::{
    Foreign, ForeignServer, Raw, Read, TCP_CLOSE_WAIT, TCP_ESTABLISHED, cpu_ticks, frame, header,
    invoke_packet, proc_state, push, raw_request, tcp_states, version, vm_rss_kib, watch_packet,
};
use support::{WAIT, Worker, eventually, free_port, upstream};

const SEAM: &str = "generated";

/// Scheduling slack added to a deadline when checking that something ended within it.
const SLACK: Duration = Duration::from_millis(1500);

/// The text of a `--log` line's fields, for matching.
fn log_text(line: &Value) -> String {
    line["fields"]
        .as_object()
        .map(|fields| {
            fields
                .values()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

/// Waits for a log line of `worker` whose fields hold every one of `parts`.
async fn expect_log(worker: &mut Worker, parts: &[&str]) -> Value {
    let parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    worker
        .expect_within(WAIT, |v| {
            v.get("log").is_some() && {
                let text = log_text(v);
                parts.iter().all(|p| text.contains(p.as_str()))
            }
        })
        .await
        .unwrap_or_else(|| panic!("{}: no log line with {parts:?}", worker.name))
}

fn assert_no_panics(workers: &mut [&mut Worker]) {
    for worker in workers {
        let panics = worker.panics();
        assert!(panics.is_empty(), "{} panicked: {panics:?}", worker.name);
    }
}

/// Starts a spin (sequential echoes until stopped) on `worker`.
async fn start_spin(worker: &mut Worker, spin: u64, gap_ms: u64, slow_ms: u64) {
    worker
        .send(json!({ "cmd": "spin", "id": spin, "payload": worker.name, "gap_ms": gap_ms, "slow_ms": slow_ms }))
        .await;
}

/// Stops a spin and returns its totals `{ok, errors, max_ms}`.
async fn stop_spin(worker: &mut Worker, spin: u64) -> Value {
    let answer = worker
        .call(json!({ "cmd": "stop_spin", "spin": spin }))
        .await;
    answer["ok"].clone()
}

fn endpoints_json(list: &[(&str, u16)]) -> Value {
    let list: Vec<Endpoint> = list.iter().map(|(h, p)| Endpoint::new(*h, *p)).collect();
    serde_json::to_value(list).expect("endpoints serialize")
}

async fn watches(up: &RegistryServer, service: &str, n: usize) {
    eventually(&format!("{n} upstream watches of {service}"), || async {
        (up.stats().watches.get(service).copied().unwrap_or(0) == n).then_some(())
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// 5. A foreign process on the port.
// ------------------------------------------------------------------------------------------------

/// `create()` against a port held by something that is not a cluster-client leader: a typed error
/// within the timeouts, naming the port and what was there; no busy loop.
/// `create()` failed with `ForeignPeer`, naming the port and what was found there.
fn assert_foreign(event: &serde_json::Value, port: u16, found: &str) {
    assert_eq!(event["event"], "failed", "{event}");
    assert_eq!(event["kind"], "foreign_peer", "{event}");
    let error = event["error"].as_str().expect("an error message");
    assert!(
        error.contains(&format!("port {port}")) && error.contains(found),
        "names the port and what it found: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_process_on_the_port() {
    let up = upstream().await;

    // Accepts and stays silent: refused after one connect timeout, without retrying.
    let silent = ForeignServer::start(Foreign::Silent).await;
    let started = Instant::now();
    let (_w, event) = Worker::start(
        "to-silent",
        SEAM,
        silent.port,
        &up,
        &["--connect-ms", "300", "--max-wait-ms", "3000"],
    )
    .await;
    let elapsed = started.elapsed();
    eprintln!("silent peer: {event} after {elapsed:?}");
    assert_foreign(&event, silent.port, "answered nothing");
    assert!(
        elapsed >= Duration::from_millis(300),
        "it waited its connect timeout"
    );
    assert!(
        elapsed < Duration::from_millis(300) + SLACK + Duration::from_secs(1),
        "within its timeout"
    );
    assert_eq!(
        silent.accepted(),
        1,
        "one attempt: a silent peer is not retried at create()"
    );

    // Accepts and closes: retried with backoff until max_wait_time, then a typed error naming it.
    let closes = ForeignServer::start(Foreign::Closes).await;
    let started = Instant::now();
    let (_w, event) = Worker::start(
        "to-closer",
        SEAM,
        closes.port,
        &up,
        &["--connect-ms", "300", "--max-wait-ms", "1000"],
    )
    .await;
    let elapsed = started.elapsed();
    eprintln!(
        "closing peer: {event} after {elapsed:?}, {} connections",
        closes.accepted()
    );
    assert_foreign(&event, closes.port, "accepted the connection and closed it");
    assert!(
        elapsed >= Duration::from_millis(1000),
        "it waited max_wait_time"
    );
    assert!(
        elapsed < Duration::from_millis(1000) + SLACK + Duration::from_secs(1),
        "within max_wait_time"
    );
    // Backoff from 20 ms doubling to 1 s: about 6 rounds in 1 s. A busy loop would make thousands.
    assert!(
        (2..=30).contains(&closes.accepted()),
        "retried with backoff, not in a busy loop: {} connections",
        closes.accepted()
    );

    // Accepts and answers HTTP: refused at once as a peer that does not speak the protocol.
    let http = ForeignServer::start(Foreign::Http).await;
    let (_w, event) = Worker::start(
        "to-http",
        SEAM,
        http.port,
        &up,
        &["--connect-ms", "300", "--max-wait-ms", "3000"],
    )
    .await;
    eprintln!("http peer: {event}");
    assert_foreign(&event, http.port, "does not speak this protocol");
    assert_eq!(http.accepted(), 1);

    assert_eq!(
        up.stats().total_connections,
        0,
        "no real client was ever built"
    );
}

// ------------------------------------------------------------------------------------------------
// 4. Bad input on a live leader's port.
// ------------------------------------------------------------------------------------------------

/// A malformed first frame (before `register_channel`), the leader's log words for it.
fn first_frame_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut wrong_version = raw_request(1, r#"{"type":"heartbeat"}"#, b"");
    wrong_version[0] = 2;
    vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".to_vec(),
            "unsupported protocol version 71",
        ),
        (
            "a negative length",
            header(1, 0, 1, 3000, -5, 0),
            "negative connection object length -5",
        ),
        (
            "a 2 GiB length",
            header(1, 0, 1, 3000, 20, i32::MAX),
            "exceeds the limit",
        ),
        (
            "a negative 2 GiB length",
            header(1, 0, 1, 3000, i32::MIN, 0),
            "negative connection object length",
        ),
        (
            "a wrong version byte",
            wrong_version,
            "unsupported protocol version 2",
        ),
        (
            "a wrong kind byte",
            header(1, 7, 1, 3000, 0, 0),
            "neither 0 (request) nor 1 (response)",
        ),
        (
            "invalid JSON",
            raw_request(1, "{not json", b""),
            "not valid JSON",
        ),
        (
            "an unknown type",
            raw_request(1, r#"{"type":"bogus"}"#, b""),
            "unknown connection object type",
        ),
    ]
}

/// Sends `bytes` on a fresh connection; the leader must close it and log why.
async fn expect_closed(leader: &mut Worker, port: u16, what: &str, bytes: &[u8], log: &[&str]) {
    let mut raw = Raw::connect(port).await;
    raw.send(bytes).await;
    let closed = raw.closed_within(WAIT).await;
    assert!(
        closed.is_some(),
        "the leader closes a connection after {what}"
    );
    expect_log(leader, log).await;
}

/// Every kind of bad input on a live leader's port: each connection is closed with a logged
/// reason, memory stays bounded, and a well-behaved follower's calls keep succeeding throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_leader_port() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &["--log", "warn", "--register-ms", "500"],
    )
    .await;
    let (is_leader, epoch) = leader.status().await;
    assert!(is_leader);
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    assert_eq!(follower.status().await, (false, epoch));
    for _ in 0..20 {
        let answer = follower
            .call(json!({ "cmd": "echo", "payload": "warm" }))
            .await;
        assert_eq!(answer["ok"], "warm");
    }
    let rss_before = vm_rss_kib(leader.pid);
    start_spin(&mut follower, 77, 1, 3000 + SLACK.as_millis() as u64).await;

    // Before registering: the first frame is garbage.
    for (what, bytes, words) in first_frame_cases() {
        expect_closed(&mut leader, port, what, &bytes, &["bad first frame", words]).await;
    }
    expect_closed(
        &mut leader,
        port,
        "a first packet that is not register_channel",
        &frame(&Packet::request(
            1,
            0,
            ConnObject::Heartbeat {},
            Bytes::new(),
        )),
        &["first packet is not a register_channel"],
    )
    .await;
    // Before registering, a frame may not be large (a register_channel takes a few hundred bytes):
    // a peer that never registers cannot make the leader buffer `max_frame_size` (8 MiB) bytes.
    expect_closed(
        &mut leader,
        port,
        "a 1 MiB first frame",
        &header(1, 0, 1, 3000, 20, 1 << 20),
        &["bad first frame", "exceeds the limit of 65536 bytes"],
    )
    .await;
    // Fifty of them at once, each sending 1 MiB of its announced 8 MiB frame, buffer nothing.
    let mut held = Vec::new();
    for _ in 0..50 {
        let mut raw = Raw::connect(port).await;
        let mut bytes = header(1, 0, 1, 3000, 20, (8 << 20) - 100);
        bytes.resize(bytes.len() + (1 << 20), b' ');
        raw.send(&bytes).await;
        held.push(raw);
    }
    for raw in &mut held {
        assert!(raw.closed_within(WAIT).await.is_some(), "closed at once");
    }
    let rss_big = vm_rss_kib(leader.pid);
    eprintln!("leader VmRSS after 50 x 1 MiB of unregistered frames: {rss_big} KiB");
    assert!(
        rss_big < rss_before + 32 * 1024,
        "{rss_before} KiB -> {rss_big} KiB"
    );
    drop(held);
    // A frame cut short, then a close.
    let mut raw = Raw::connect(port).await;
    let whole = frame(&support::faults::register_packet(1, "registry"));
    raw.send(&whole[..whole.len() - 5]).await;
    raw.stream.shutdown().await.expect("half-close");
    assert!(
        raw.closed_within(WAIT).await.is_some(),
        "closed after a cut frame"
    );
    expect_log(&mut leader, &["bad first frame", "bytes remaining"]).await;
    // A connection that never registers, and one that stops in the middle of its header: closed
    // after the register timeout (500 ms), not before.
    for (what, bytes) in [
        ("says nothing", &[][..]),
        ("sends half a header", &[1u8, 0, 0, 0][..]),
    ] {
        // Timed from before the connect: the leader's clock starts after it.
        let started = Instant::now();
        let mut raw = Raw::connect(port).await;
        raw.send(bytes).await;
        let closed = raw.closed_within(WAIT).await.map(|_| started.elapsed());
        eprintln!("a connection that {what}: closed after {closed:?}");
        let closed = closed.unwrap_or_else(|| panic!("a connection that {what} is closed"));
        assert!(
            closed >= Duration::from_millis(500),
            "not before the register timeout: {closed:?}"
        );
        assert!(closed < Duration::from_millis(500) + SLACK);
        expect_log(&mut leader, &["did not register in time"]).await;
    }

    // After registering: the same garbage closes the follower connection.
    for (what, bytes, words) in first_frame_cases() {
        let mut raw = Raw::registered(port, "registry").await;
        raw.send(&bytes).await;
        assert!(
            raw.closed_within(WAIT).await.is_some(),
            "the leader closes a registered connection after {what}"
        );
        expect_log(
            &mut leader,
            &["closing a follower connection: bad frame", words],
        )
        .await;
    }
    for (what, conn) in [
        (
            "a second register_channel",
            r#"{"type":"register_channel","channelName":"registry"}"#,
        ),
        (
            "an invoke_result request",
            r#"{"type":"invoke_result","success":true}"#,
        ),
    ] {
        let mut raw = Raw::registered(port, "registry").await;
        raw.send(&raw_request(5, conn, b"")).await;
        assert!(
            raw.closed_within(WAIT).await.is_some(),
            "the leader closes a registered connection after {what}"
        );
        expect_log(
            &mut leader,
            &["closing a follower connection", "unexpected packet type"],
        )
        .await;
    }
    let mut raw = Raw::registered(port, "registry").await;
    let whole = frame(&Packet::request(
        2,
        0,
        ConnObject::Heartbeat {},
        Bytes::new(),
    ));
    raw.send(&whole[..whole.len() - 3]).await;
    raw.stream.shutdown().await.expect("half-close");
    assert!(raw.closed_within(WAIT).await.is_some());
    expect_log(
        &mut leader,
        &[
            "closing a follower connection: bad frame",
            "bytes remaining",
        ],
    )
    .await;

    // Well-formed packets the leader cannot serve are answered with a typed fault, and the
    // connection stays usable.
    let mut raw = Raw::registered(port, "registry").await;
    let mut pushes = Vec::new();
    let mut bad_utf8 = BytesMut::new();
    push_arg(&mut bad_utf8, &[1, 0xff]);
    let mut good = BytesMut::new();
    push(&mut good, &"still here".to_owned());
    let cases: Vec<(&str, Packet, &str)> = vec![
        (
            "an unknown method",
            invoke_packet(10, 3000, "no_such_method", 0, Bytes::new()),
            "unknown_method",
        ),
        (
            "a subscribe method invoked",
            invoke_packet(11, 3000, "watch", 1, good.clone().freeze()),
            "unknown_method",
        ),
        (
            "arguments that do not decode",
            invoke_packet(12, 3000, "echo", 1, bad_utf8.freeze()),
            "bad_arguments",
        ),
        (
            "a missing argument",
            invoke_packet(13, 3000, "echo", 0, Bytes::new()),
            "bad_arguments",
        ),
        (
            "an argument too many",
            invoke_packet(14, 3000, "echo", 2, good.clone().freeze()),
            "bad_arguments",
        ),
        (
            "an argument length past the end",
            invoke_packet(
                15,
                3000,
                "echo",
                1,
                Bytes::from_static(&[0, 0, 0, 200, 1, 2]),
            ),
            "bad_arguments",
        ),
    ];
    for (what, packet, fault) in cases {
        let id = packet.id;
        raw.send_packet(&packet).await;
        let answer = raw.answer(WAIT, &mut pushes).await;
        assert_eq!(answer.id, id, "{what}: answered with its own id");
        match &answer.conn {
            ConnObject::InvokeResult {
                success: false,
                fault: Some(found),
            } => assert_eq!(found, fault, "{what}"),
            other => panic!("{what}: expected a {fault} fault, got {other:?}"),
        }
        eprintln!("{what}: {fault}: {}", String::from_utf8_lossy(&answer.app));
    }
    raw.send_packet(&invoke_packet(16, 3000, "echo", 1, good.freeze()))
        .await;
    let answer = raw.answer(WAIT, &mut pushes).await;
    assert_eq!(answer.id, 16);
    assert!(matches!(
        answer.conn,
        ConnObject::InvokeResult {
            success: true,
            fault: None
        }
    ));
    let echoed: String = Codec::default().decode(&answer.app).expect("a string");
    assert_eq!(echoed, "still here", "the connection still serves calls");
    // Once registered, frames up to `max_frame_size` are fine: a heartbeat carrying 1 MiB (not an
    // echo: the upstream registry would drop the real client's connection over a 1 MiB line).
    raw.send_packet(&Packet::request(
        17,
        3000,
        ConnObject::Heartbeat {},
        Bytes::from(vec![0u8; 1 << 20]),
    ))
    .await;
    let answer = raw.answer(WAIT, &mut pushes).await;
    assert_eq!(answer.id, 17);
    assert_eq!(
        answer.conn,
        ConnObject::HeartbeatRes {},
        "a 1 MiB frame is read"
    );
    drop(raw);

    // 10,000 connections opened and dropped, 50 at a time.
    let opened = futures::stream::iter(0..10_000)
        .map(|_| async move {
            tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
                .is_ok_and(|c| c.is_ok())
        })
        .buffer_unordered(50)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    assert_eq!(opened, 10_000, "every connection opened");
    // The leader's side of every dropped connection goes away; the follower's stays.
    eventually("the leader closed every dropped connection", || async {
        let states = tcp_states(port);
        let established = states.iter().filter(|s| **s == TCP_ESTABLISHED).count();
        let close_wait = states.iter().filter(|s| **s == TCP_CLOSE_WAIT).count();
        (established == 1 && close_wait == 0).then_some(())
    })
    .await;
    let rss_after = vm_rss_kib(leader.pid);
    eprintln!("leader VmRSS: {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory stays bounded: {rss_before} KiB -> {rss_after} KiB"
    );

    let totals = stop_spin(&mut follower, 77).await;
    eprintln!("follower during the bad input: {totals}");
    assert!(totals["ok"].as_u64().expect("ok count") > 0, "{totals}");
    assert_eq!(
        totals["errors"],
        json!({}),
        "every call succeeded: {totals}"
    );
    let failures = follower.take_all(|v| v.get("spin").is_some());
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(leader.status().await, (true, epoch), "the leader serves on");
    assert_eq!(follower.status().await, (false, epoch), "no failover");
    assert_no_panics(&mut [&mut leader, &mut follower]);
}

// ------------------------------------------------------------------------------------------------
// 4a. Lengths that lie inside an application object.
// ------------------------------------------------------------------------------------------------

/// A bincode string whose length prefix claims 2^40 bytes: `0xfd`, then the length as a
/// little-endian u64. Nine bytes; framed as an argument, thirteen.
const HUGE_STRING: &[u8] = &[0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

/// Application objects whose lengths lie cannot make a member allocate what they claim: a leader
/// answers `bad_arguments` for an invoke, ends the subscription for a subscribe, and serves on; a
/// follower given such a result by a squatter on the port gets a typed error and runs on. Before
/// the fix each of these aborted the process ("memory allocation of 1099511627776 bytes failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_lengths_in_application_objects() {
    let up = upstream().await;
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    let (is_leader, epoch) = leader.status().await;
    assert!(is_leader);
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 78, 1, 3000 + SLACK.as_millis() as u64).await;
    let rss_before = vm_rss_kib(leader.pid);

    let mut hostile = BytesMut::new();
    push_arg(&mut hostile, HUGE_STRING);
    assert_eq!(hostile.len(), 13);
    let mut raw = Raw::registered(port, "registry").await;
    let mut kept = Vec::new();
    raw.send_packet(&invoke_packet(
        20,
        3000,
        "echo",
        1,
        hostile.clone().freeze(),
    ))
    .await;
    let answer = raw.answer(WAIT, &mut kept).await;
    assert_eq!(answer.id, 20);
    match &answer.conn {
        ConnObject::InvokeResult {
            success: false,
            fault: Some(fault),
        } => assert_eq!(fault, "bad_arguments"),
        other => panic!("expected a bad_arguments fault, got {other:?}"),
    }
    let reason = String::from_utf8_lossy(&answer.app);
    eprintln!("a 13-byte argument claiming 2^40 bytes: {reason}");
    assert!(
        reason.contains("claims more bytes than the input holds"),
        "{reason}"
    );

    let mut subscribe = watch_packet(21, "lying", true);
    subscribe.app = hostile.freeze();
    raw.send_packet(&subscribe).await;
    let end = raw
        .wait_for(WAIT, &mut kept, |p| {
            matches!(&p.conn, ConnObject::SubscribeResult { end: Some(_), .. })
        })
        .await;
    eprintln!("a subscribe with that argument: {:?}", end.conn);
    let mut good = BytesMut::new();
    push(&mut good, &"after".to_owned());
    raw.send_packet(&invoke_packet(22, 3000, "echo", 1, good.freeze()))
        .await;
    let answer = raw.answer(WAIT, &mut kept).await;
    let echoed: String = Codec::default().decode(&answer.app).expect("a string");
    assert_eq!(echoed, "after", "the same connection is still served");

    let rss_after = vm_rss_kib(leader.pid);
    eprintln!("leader VmRSS: {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "{rss_before} KiB -> {rss_after} KiB"
    );
    let totals = stop_spin(&mut follower, 78).await;
    assert!(totals["ok"].as_u64().expect("ok count") > 0, "{totals}");
    assert_eq!(
        totals["errors"],
        json!({}),
        "the other follower saw nothing: {totals}"
    );
    assert_eq!(leader.status().await, (true, epoch), "the leader serves on");

    // The other direction: a squatter on the port answers a follower's echo with nine bytes that
    // claim a 2^40-byte string.
    let squatter = ForeignServer::start(Foreign::Squatter(HUGE_STRING)).await;
    let mut victim = Worker::ready("victim", SEAM, squatter.port, &up, &[]).await;
    let answer = victim.call(json!({ "cmd": "echo", "payload": "x" })).await;
    eprintln!("a follower given a lying result: {answer}");
    let err = answer["err"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {answer}"));
    assert!(err.contains("could not decode"), "{answer}");
    assert!(victim.is_running(), "the follower is still running");
    let again = victim.call(json!({ "cmd": "echo", "payload": "y" })).await;
    assert!(again["err"].is_string(), "and still answers: {again}");
    assert_no_panics(&mut [&mut leader, &mut follower, &mut victim]);
}

// ------------------------------------------------------------------------------------------------
// 4b. Caps.
// ------------------------------------------------------------------------------------------------

/// Each cap is an option, and each is enforced: time to register, calls in flight per follower,
/// subscriptions per follower, connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_are_enforced() {
    let up = upstream().await;
    for service in ["s1", "s2", "s3", "shared"] {
        up.set(service, vec![Endpoint::new(service, 1)]);
    }
    let port = free_port();
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &[
            "--log",
            "warn",
            "--register-ms",
            "300",
            "--max-calls",
            "2",
            "--max-subs",
            "2",
            "--max-connections",
            "4",
        ],
    )
    .await;
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    follower
        .send(json!({ "cmd": "watch", "sub": "shared", "service": "shared" }))
        .await;
    assert_eq!(
        follower.item("shared").await,
        endpoints_json(&[("shared", 1)])
    );
    start_spin(&mut follower, 5, 2, 3000 + SLACK.as_millis() as u64).await;

    // register_timeout: a silent connection is closed after 300 ms.
    let started = Instant::now();
    let mut silent = Raw::connect(port).await;
    silent
        .closed_within(WAIT)
        .await
        .expect("a silent connection is closed");
    let closed = started.elapsed();
    eprintln!("register timeout 300 ms: closed after {closed:?}");
    assert!(closed >= Duration::from_millis(300) && closed < Duration::from_millis(300) + SLACK);
    expect_log(&mut leader, &["did not register in time"]).await;

    // max_calls_per_follower = 2: of five calls sent at once, two run and three are refused at once.
    let mut raw = Raw::registered(port, "registry").await;
    let mut pushes = Vec::new();
    let mut frames = Vec::new();
    for id in 11..16 {
        let mut app = BytesMut::new();
        push(&mut app, &300u64);
        frames.extend(frame(&invoke_packet(id, 3000, "pause", 1, app.freeze())));
    }
    raw.send(&frames).await;
    let mut answers = HashMap::new();
    for _ in 0..5 {
        let answer = raw.answer(WAIT, &mut pushes).await;
        answers.insert(answer.id, answer);
    }
    for id in 11..13 {
        let answer = &answers[&id];
        assert!(
            matches!(answer.conn, ConnObject::InvokeResult { success: true, .. }),
            "call {id} ran: {answer:?}"
        );
        assert_eq!(
            Codec::default().decode::<u64>(&answer.app).expect("u64"),
            300
        );
    }
    for id in 13..16 {
        let answer = &answers[&id];
        match &answer.conn {
            ConnObject::InvokeResult {
                success: false,
                fault: Some(fault),
            } => assert_eq!(fault, "overloaded", "call {id}"),
            other => panic!("call {id}: expected overloaded, got {other:?}"),
        }
    }
    // The cap counts calls in flight: once they are done, calls run again.
    let mut app = BytesMut::new();
    push(&mut app, &1u64);
    raw.send_packet(&invoke_packet(17, 3000, "pause", 1, app.freeze()))
        .await;
    let answer = raw.answer(WAIT, &mut pushes).await;
    assert!(
        matches!(answer.conn, ConnObject::InvokeResult { success: true, .. }),
        "{answer:?}"
    );

    // max_subscriptions_per_follower = 2: a third distinct subscription is ended at once, whether
    // its topic is new or already held by another follower.
    raw.send_packet(&watch_packet(20, "s1", true)).await;
    raw.send_packet(&watch_packet(21, "s2", true)).await;
    watches(&up, "s1", 1).await;
    watches(&up, "s2", 1).await;
    for (service, id) in [("s3", 22), ("shared", 23)] {
        raw.send_packet(&watch_packet(id, service, true)).await;
        let refusal = raw
            .wait_for(WAIT, &mut pushes, |p| {
                matches!(&p.conn, ConnObject::SubscribeResult { key, end: Some(_), .. } if key.contains(service))
            })
            .await;
        eprintln!("subscription {service} refused: {:?}", refusal.conn);
    }
    // The refusal ended only the raw connection's attempt: the follower's own stream of the topic
    // goes on.
    up.set("shared", vec![Endpoint::new("shared", 2)]);
    follower
        .item_eq("shared", &endpoints_json(&[("shared", 2)]))
        .await;
    assert_eq!(
        up.stats().watches.get("s3"),
        None,
        "no upstream watch for a refused subscription"
    );
    expect_log(&mut leader, &["subscription refused"]).await;
    // Unsubscribing frees a place; s1 was the last subscriber, so its upstream watch ends.
    raw.send_packet(&watch_packet(24, "s1", false)).await;
    watches(&up, "s1", 0).await;
    raw.send_packet(&watch_packet(25, "s3", true)).await;
    watches(&up, "s3", 1).await;

    // max_connections = 4: the follower and `raw` hold two; two more fit; the fifth is closed.
    let second = Raw::registered(port, "registry").await;
    let _third = Raw::registered(port, "registry").await;
    let mut over = Raw::connect(port).await;
    over.send(&frame(&support::faults::register_packet(1, "registry")))
        .await;
    match over.next(WAIT).await {
        Read::Packet(packet) => assert!(
            matches!(
                &packet.conn,
                ConnObject::RegisterChannelRes { success: Some(false), code: Some(code), .. }
                    if code == "too_many_connections"
            ),
            "a connection over the cap is refused with a reason: {packet:?}"
        ),
        other => panic!("a connection over the cap is refused with a reason, got {other:?}"),
    }
    assert!(
        matches!(over.next(WAIT).await, Read::Closed),
        "then it is closed"
    );
    expect_log(&mut leader, &["connection cap reached"]).await;
    // Closing one frees its place.
    drop(second);
    let mut attempts = 0;
    eventually("a place under the cap again", || {
        attempts += 1;
        async move {
            let mut raw = Raw::connect(port).await;
            raw.send(&frame(&support::faults::register_packet(1, "registry")))
                .await;
            match raw.next(WAIT).await {
                Read::Packet(p) => Some(p),
                _ => None,
            }
        }
    })
    .await;
    eprintln!("a place freed after {attempts} attempts");

    let totals = stop_spin(&mut follower, 5).await;
    eprintln!("follower during the caps: {totals}");
    assert_eq!(
        totals["errors"],
        json!({}),
        "the well-behaved follower never failed: {totals}"
    );
    assert_no_panics(&mut [&mut leader, &mut follower]);
}

// ------------------------------------------------------------------------------------------------
// 3. A follower killed mid-call.
// ------------------------------------------------------------------------------------------------

/// `kill -9` of a follower while its call runs in the leader: the leader drops its connection and
/// its subscriptions (the upstream watch ends where it was the last subscriber), and the other
/// followers notice nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_killed_mid_call() {
    let up = upstream().await;
    up.set("only-a", vec![Endpoint::new("a", 1)]);
    up.set("shared", vec![Endpoint::new("s", 1)]);
    let port = free_port();
    let flags = ["--heartbeat-ms", "200", "--response-ms", "2000"];
    let mut leader = Worker::ready(
        "leader",
        SEAM,
        port,
        &up,
        &[&flags[..], &["--log", "debug"]].concat(),
    )
    .await;
    let (_, epoch) = leader.status().await;
    let mut a = Worker::ready("a", SEAM, port, &up, &flags).await;
    let mut others = vec![
        Worker::ready("b", SEAM, port, &up, &flags).await,
        Worker::ready("c", SEAM, port, &up, &flags).await,
    ];
    a.send(json!({ "cmd": "watch", "sub": "x", "service": "only-a" }))
        .await;
    assert_eq!(a.item("x").await, endpoints_json(&[("a", 1)]));
    for worker in std::iter::once(&mut a).chain(others.iter_mut()) {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "shared" }))
            .await;
        assert_eq!(worker.item("s").await, endpoints_json(&[("s", 1)]));
    }
    watches(&up, "only-a", 1).await;
    watches(&up, "shared", 1).await;
    let established = |port| {
        tcp_states(port)
            .into_iter()
            .filter(|s| *s == TCP_ESTABLISHED)
            .count()
    };
    assert_eq!(
        established(port),
        3,
        "the leader holds three follower connections"
    );

    for worker in &mut others {
        start_spin(worker, 3, 1, 2000 + SLACK.as_millis() as u64).await;
    }
    // A call that runs 600 ms in the leader, and a spin, both in flight at the kill.
    a.send(json!({ "cmd": "pause", "id": 900, "ms": 600 }))
        .await;
    start_spin(&mut a, 3, 1, u64::MAX).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.kill9().await;
    let killed = Instant::now();

    // The leader drops the connection (no socket of it left half-closed) and a's subscriptions: the
    // upstream watch of `only-a` ends, the shared one stays.
    eventually(
        "the leader closed the dead follower's connection",
        || async {
            let states = tcp_states(port);
            let open = states.iter().filter(|s| **s == TCP_ESTABLISHED).count();
            let half_closed = states.iter().filter(|s| **s == TCP_CLOSE_WAIT).count();
            (open == 2 && half_closed == 0).then_some(())
        },
    )
    .await;
    watches(&up, "only-a", 0).await;
    eprintln!(
        "the dead follower's connection and subscription gone {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(up.stats().watches.get("shared"), Some(&1));
    expect_log(&mut leader, &["follower connection closed"]).await;
    expect_log(&mut leader, &["last subscriber gone", "only-a"]).await;

    // The call a made still ran to its end in the leader; its answer had nowhere to go. Then the
    // others still get every update and every answer.
    tokio::time::sleep(Duration::from_millis(600)).await;
    up.set("shared", vec![Endpoint::new("s", 2)]);
    for worker in &mut others {
        worker.item_eq("s", &endpoints_json(&[("s", 2)])).await;
        let totals = stop_spin(worker, 3).await;
        eprintln!("{} while a was killed: {totals}", worker.name);
        assert!(totals["ok"].as_u64().expect("ok count") > 0);
        assert_eq!(
            totals["errors"],
            json!({}),
            "{} noticed nothing: {totals}",
            worker.name
        );
        assert_eq!(
            worker.status().await,
            (false, epoch),
            "{}: same term",
            worker.name
        );
        let stray = worker.take_all(|v| v.get("spin").is_some() || v.get("end").is_some());
        assert!(stray.is_empty(), "{}: {stray:?}", worker.name);
    }
    assert_eq!(leader.status().await, (true, epoch));
    let answer = leader
        .call(json!({ "cmd": "echo", "payload": "leader" }))
        .await;
    assert_eq!(answer["ok"], "leader");
    assert_eq!(
        up.stats().total_connections,
        1,
        "no failover, no second real client"
    );
    let mut all: Vec<&mut Worker> = vec![&mut leader];
    all.extend(others.iter_mut());
    assert_no_panics(&mut all);
    assert_eq!(a.panics(), Vec::<Value>::new());
}

// ------------------------------------------------------------------------------------------------
// 2. A frozen leader.
// ------------------------------------------------------------------------------------------------

/// The status of `worker` once it reports a term after `epoch`.
async fn new_term(worker: &mut Worker, epoch: u64) -> (bool, u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = worker.status().await;
        if status.1 > epoch {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no term after {epoch}",
            worker.name
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls `echo` on `worker` until one fails with something other than a timeout (the follower has
/// noticed the frozen leader and fails fast); every call must end within its deadline.
async fn until_fail_fast(worker: &mut Worker, deadline_ms: u64) -> Value {
    for _ in 0..200 {
        let started = Instant::now();
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": "frozen?" }))
            .await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(deadline_ms) + SLACK,
            "{}: a call ended within its deadline: {answer} after {took:?}",
            worker.name
        );
        assert!(
            answer.get("ok").is_none(),
            "{}: a frozen leader answered: {answer}",
            worker.name
        );
        if answer["kind"] != "timeout" {
            return answer;
        }
    }
    panic!("{}: calls never failed fast", worker.name);
}

/// A leader frozen by `SIGSTOP`: followers notice within their heartbeat bound, fail calls fast
/// with a typed error instead of hanging, retry without a busy loop, and recover by themselves
/// after `SIGCONT` (same term) and after the frozen process is killed (a new term).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_leader() {
    const HEARTBEAT_MS: u64 = 100;
    const RESPONSE_MS: u64 = 300;
    const CONNECT_MS: u64 = 300;
    let up = upstream().await;
    up.set("cfg", vec![Endpoint::new("v", 1)]);
    let port = free_port();
    let flags = [
        "--heartbeat-ms",
        &HEARTBEAT_MS.to_string(),
        "--response-ms",
        &RESPONSE_MS.to_string(),
        "--connect-ms",
        &CONNECT_MS.to_string(),
    ]
    .map(str::to_owned);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &flags).await;
    let (_, epoch) = leader.status().await;
    let mut followers = Vec::new();
    for i in 0..3 {
        let logged = [&flags[..], &["--log", "warn"]].concat();
        followers.push(Worker::ready(&format!("f{i}"), SEAM, port, &up, &logged).await);
    }
    for worker in &mut followers {
        worker
            .send(json!({ "cmd": "watch", "sub": "cfg", "service": "cfg" }))
            .await;
        assert_eq!(worker.item("cfg").await, endpoints_json(&[("v", 1)]));
    }

    // Freeze. A call in flight across the freeze: its own value or a typed error, never another's.
    followers[0]
        .send(json!({ "cmd": "pause", "id": 500, "ms": 50 }))
        .await;
    leader.signal("STOP").await;
    let frozen = Instant::now();
    let pid = leader.pid;
    eventually("the leader stopped", || async move {
        (proc_state(pid) == 'T').then_some(())
    })
    .await;
    // Each follower notices within its heartbeat bound: an unanswered heartbeat (sent every
    // interval, answered within the response timeout) ends the connection.
    let mut noticed = Vec::new();
    for worker in &mut followers {
        expect_log(worker, &["heartbeat unanswered"]).await;
        noticed.push(frozen.elapsed());
    }
    eprintln!("followers noticing the frozen leader {noticed:?} after the freeze");
    let bound = Duration::from_millis(2 * HEARTBEAT_MS + RESPONSE_MS) + SLACK;
    for (worker, took) in followers.iter().zip(&noticed) {
        assert!(
            *took < bound,
            "{} noticed within {bound:?}: {took:?}",
            worker.name
        );
    }
    let mut failing = Vec::new();
    for worker in &mut followers {
        let answer = until_fail_fast(worker, RESPONSE_MS).await;
        failing.push(frozen.elapsed());
        assert_eq!(
            answer["kind"], "no_leader",
            "{}: a typed error: {answer}",
            worker.name
        );
        let error = answer["err"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("port {port}")) && error.contains("answered nothing"),
            "{}: {error}",
            worker.name
        );
    }
    eprintln!("followers failing fast {failing:?} after the freeze");
    // Noticing, then two election rounds of one connect timeout each (the first failed round keeps
    // the state `Electing`, where calls wait within their deadline), plus backoff and slack.
    let bound =
        Duration::from_millis(2 * HEARTBEAT_MS + RESPONSE_MS + 2 * CONNECT_MS + 100) + SLACK;
    for (worker, took) in followers.iter().zip(&failing) {
        assert!(
            *took < bound,
            "{} failed fast within {bound:?}: {took:?}",
            worker.name
        );
    }
    let in_flight = followers[0].expect(|v| v["id"] == 500).await;
    assert!(
        in_flight["ok"] == 50
            || in_flight["kind"] == "no_leader"
            || in_flight["kind"] == "timeout"
            || in_flight["kind"] == "leader_lost",
        "the call in flight: its own value or a typed error: {in_flight}"
    );

    // While frozen: retrying, not spinning. CPU time of each follower over a quiet window.
    let window = Duration::from_millis(1500);
    let before: Vec<u64> = followers.iter().map(|w| cpu_ticks(w.pid)).collect();
    tokio::time::sleep(window).await;
    let used: Vec<u64> = followers
        .iter()
        .zip(&before)
        .map(|(w, b)| cpu_ticks(w.pid) - b)
        .collect();
    eprintln!("CPU ticks (1/100 s) of each follower over {window:?} frozen: {used:?}");
    for (worker, ticks) in followers.iter().zip(&used) {
        // A busy loop would use ~150 ticks (a whole core); allow a tenth of one.
        assert!(*ticks <= 15, "{}: {ticks} ticks in {window:?}", worker.name);
    }
    for worker in &mut followers {
        let started = Instant::now();
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": "still frozen" }))
            .await;
        assert_eq!(
            answer["kind"], "no_leader",
            "{}: fails fast: {answer}",
            worker.name
        );
        assert!(started.elapsed() < Duration::from_millis(RESPONSE_MS) + SLACK);
    }

    // Thaw: every follower rejoins the same term by itself.
    leader.signal("CONT").await;
    let thawed = Instant::now();
    for worker in &mut followers {
        let answer = loop {
            let answer = worker
                .call(json!({ "cmd": "echo", "payload": "thawed" }))
                .await;
            if answer["ok"] == "thawed" || thawed.elapsed() > WAIT {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            answer["ok"], "thawed",
            "{}: served again: {answer}",
            worker.name
        );
        assert_eq!(
            worker.status().await,
            (false, epoch),
            "{}: same term",
            worker.name
        );
    }
    eprintln!(
        "all followers served again {:?} after SIGCONT",
        thawed.elapsed()
    );
    assert_eq!(leader.status().await, (true, epoch));
    up.set("cfg", vec![Endpoint::new("v", 2)]);
    for worker in &mut followers {
        worker.item_eq("cfg", &endpoints_json(&[("v", 2)])).await;
    }
    // After the reconnect, concurrent calls each get their own answer.
    for (n, worker) in followers.iter_mut().enumerate() {
        let base = 10 * n as u64;
        for ms in 0..10 {
            worker
                .send(json!({ "cmd": "pause", "id": 1000 + ms, "ms": base + ms }))
                .await;
        }
        for ms in 0..10 {
            let answer = worker.expect(|v| v["id"] == 1000 + ms).await;
            assert_eq!(answer["ok"], base + ms, "{}: its own answer", worker.name);
        }
    }

    // Freeze again, then kill the frozen process: a follower takes over in a new term.
    leader.signal("STOP").await;
    until_fail_fast(&mut followers[0], RESPONSE_MS).await;
    leader.kill9().await;
    let killed = Instant::now();
    let mut leaders = 0;
    let mut epochs = Vec::new();
    for worker in &mut followers {
        let status = new_term(worker, epoch).await;
        leaders += usize::from(status.0);
        epochs.push(status.1);
    }
    assert_eq!(leaders, 1, "exactly one new leader");
    assert!(
        epochs.windows(2).all(|e| e[0] == e[1]),
        "one term: {epochs:?}"
    );
    for worker in &mut followers {
        let answer = loop {
            let answer = worker
                .call(json!({ "cmd": "echo", "payload": "after" }))
                .await;
            if answer["ok"] == "after" || killed.elapsed() > WAIT {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(answer["ok"], "after", "{}: {answer}", worker.name);
    }
    eprintln!(
        "served by a new leader {:?} after killing the frozen one",
        killed.elapsed()
    );
    assert!(up.wait_for_live_connections(1, WAIT).await);
    assert_eq!(up.stats().total_connections, 2, "one real client per term");
    up.set("cfg", vec![Endpoint::new("v", 3)]);
    for worker in &mut followers {
        worker.item_eq("cfg", &endpoints_json(&[("v", 3)])).await;
    }
    let mut all: Vec<&mut Worker> = followers.iter_mut().collect();
    assert_no_panics(&mut all);
}

// ------------------------------------------------------------------------------------------------
// 1. Leader churn.
// ------------------------------------------------------------------------------------------------

/// The subscription every churn worker holds, and the upstream service it watches.
const CHURN_SUB: &str = "c";

/// A churn worker and what its stream has shown so far.
struct Member {
    worker: Worker,
    /// The last version its stream delivered.
    last: Option<u64>,
    /// Items delivered, in all.
    items: u64,
}

/// Starts a churn worker: it watches the numbered service and spins echoes.
async fn churn_member(
    name: &str,
    port: u16,
    up: &RegistryServer,
    flags: &[&str],
    slow_ms: u64,
) -> Member {
    let mut worker = Worker::ready(name, SEAM, port, up, flags).await;
    worker
        .send(json!({ "cmd": "watch", "sub": CHURN_SUB, "service": "churn" }))
        .await;
    start_spin(&mut worker, 1, 2, slow_ms).await;
    // And lookups, which are not idempotent: one in flight at a kill fails with `leader_lost`.
    worker
        .send(json!({ "cmd": "spin", "id": 2, "payload": "churn", "gap_ms": 2, "slow_ms": slow_ms, "lookup": true }))
        .await;
    Member {
        worker,
        last: None,
        items: 0,
    }
}

/// Reads `member`'s stream until it delivers a version above `above`; returns every version read.
async fn versions_until_above(member: &mut Member, above: u64) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    let mut versions = Vec::new();
    loop {
        for line in member.worker.take_all(|v| {
            v["sub"] == CHURN_SUB && (v.get("item").is_some() || v.get("end").is_some())
        }) {
            assert!(
                line.get("end").is_none(),
                "{}: the stream ended: {line}",
                member.worker.name
            );
            versions.push(version(&line["item"]));
        }
        if versions.last().is_some_and(|v| *v > above) {
            return versions;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no item above {above} (read {versions:?})",
            member.worker.name
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks one batch of a member's stream: consecutive versions, except at most one step (`allowed`
/// only across a kill) that starts at a version the dead leader may have forwarded (`<= dead_max`)
/// and does not go back. That step is where the stream resumed on the new leader: the cached or first
/// upstream value. Everything published after it must follow without a gap.
fn check_batch(
    member: &mut Member,
    versions: &[u64],
    transition: Option<u64>,
) -> Option<(u64, u64)> {
    let name = &member.worker.name;
    let mut steps = Vec::new();
    for &v in versions {
        if let Some(last) = member.last
            && v != last + 1
        {
            steps.push((last, v));
        }
        member.last = Some(v);
        member.items += 1;
    }
    match (steps.as_slice(), transition) {
        ([], _) => None,
        ([(a, b)], Some(dead_max)) => {
            assert!(b >= a, "{name}: the stream went back from {a} to {b}");
            assert!(
                *a <= dead_max,
                "{name}: a gap {a} -> {b} after the resume point (the dead leader forwarded at most {dead_max})"
            );
            Some((*a, *b))
        }
        (steps, _) => panic!(
            "{name}: items missing or repeated: steps {steps:?} (a kill allows one resume step: {transition:?})"
        ),
    }
}

/// Checks the spin lines of a member: only typed errors, none past its deadline.
fn check_spins(member: &mut Member, bound_ms: u64, seen: &mut HashMap<String, u64>) {
    for line in member.worker.take_all(|v| v.get("spin").is_some()) {
        assert!(
            line.get("slow").is_none(),
            "{}: a call took longer than its deadline: {line}",
            member.worker.name
        );
        let kind = line["kind"].as_str().unwrap_or_default().to_owned();
        assert!(
            kind == "leader_lost" || kind == "timeout",
            "{}: a call failed with something else than a typed transport error: {line}",
            member.worker.name
        );
        assert!(line["ms"].as_u64().expect("ms") <= bound_ms, "{line}");
        *seen.entry(kind).or_default() += 1;
    }
}

/// `kill -9` of the leader 20 times in a row while 4 followers call in a loop and hold a
/// subscription that gets an item every 3 ms. After every kill: exactly one leader (one term for
/// all, one live upstream connection, one upstream connection per term), every stream resumes and
/// shows every version from its resume point on, every call returns a value or a typed error within
/// its deadline, no process panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_churn() {
    const KILLS: u64 = 20;
    const FOLLOWERS: usize = 4;
    const RESPONSE_MS: u64 = 1000;
    let bound_ms = RESPONSE_MS + SLACK.as_millis() as u64;
    let up = Arc::new(upstream().await);
    let port = free_port();
    let flags = [
        "--heartbeat-ms",
        "200",
        "--response-ms",
        "1000",
        "--connect-ms",
        "1000",
    ];

    // The upstream publishes version n of `churn` every 3 ms; `published` is raised before each
    // publish, so it is never below what anyone may have received.
    let published = Arc::new(AtomicU64::new(1));
    up.set("churn", vec![Endpoint::new("1", 0)]);
    let publisher = {
        let up = Arc::clone(&up);
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(3));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for n in 2..1_000_000u64 {
                tick.tick().await;
                published.store(n, Ordering::SeqCst);
                up.set("churn", vec![Endpoint::new(n.to_string(), 0)]);
            }
        })
    };

    let mut members = vec![churn_member("w0", port, &up, &flags, bound_ms).await];
    assert!(members[0].worker.status().await.0, "w0 leads");
    for i in 1..=FOLLOWERS {
        members.push(churn_member(&format!("w{i}"), port, &up, &flags, bound_ms).await);
    }
    let now = published.load(Ordering::SeqCst);
    for member in &mut members {
        let versions = versions_until_above(member, now).await;
        check_batch(member, &versions, None);
    }
    let mut spawned = members.len();
    let mut leader = 0;
    let mut epoch = members[0].worker.status().await.1;
    let mut errors = HashMap::new();
    let mut calls = 0;
    let mut terms = Vec::new();
    let mut resumes = Vec::new();
    let mut gaps = Vec::new();

    for kill in 1..=KILLS {
        // Let calls and items flow for a while, so that the kill lands in the middle of them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut dead = members.remove(leader);
        dead.worker.kill9().await;
        let killed = Instant::now();
        let dead_max = published.load(Ordering::SeqCst);
        let panics = dead.worker.panics();
        assert!(
            panics.is_empty(),
            "{} panicked: {panics:?}",
            dead.worker.name
        );

        // Exactly one leader: one new term for everyone, one of them leading it.
        let mut leaders = Vec::new();
        let mut epochs = Vec::new();
        for (i, member) in members.iter_mut().enumerate() {
            let (is_leader, new_epoch) = new_term(&mut member.worker, epoch).await;
            if is_leader {
                leaders.push(i);
            }
            epochs.push(new_epoch);
        }
        terms.push(killed.elapsed());
        assert_eq!(
            leaders.len(),
            1,
            "kill {kill}: exactly one leader: {leaders:?}"
        );
        assert!(
            epochs.windows(2).all(|e| e[0] == e[1]),
            "kill {kill}: one term: {epochs:?}"
        );
        leader = leaders[0];
        epoch = epochs[0];
        // ... and one real client: one live upstream connection, one more in all per term.
        assert!(
            up.wait_for_live_connections(1, WAIT).await,
            "kill {kill}: one live upstream connection: {:?}",
            up.stats()
        );
        assert_eq!(
            up.stats().total_connections as u64,
            kill + 1,
            "kill {kill}: one real client per term"
        );

        // Every stream resumes, with every version from its resume point on.
        for member in &mut members {
            let versions = versions_until_above(member, dead_max).await;
            if let Some(gap) = check_batch(member, &versions, Some(dead_max)) {
                gaps.push(gap.1 - gap.0);
            }
        }
        resumes.push(killed.elapsed());
        // Every call returned a value or a typed error within its deadline, and calls succeed again.
        for member in &mut members {
            check_spins(member, bound_ms, &mut errors);
            let answer = member
                .worker
                .call(json!({ "cmd": "echo", "payload": "served" }))
                .await;
            assert_eq!(
                answer["ok"], "served",
                "kill {kill}: {}: {answer}",
                member.worker.name
            );
            let panics = member.worker.panics();
            assert!(
                panics.is_empty(),
                "{} panicked: {panics:?}",
                member.worker.name
            );
        }
        assert_eq!(
            up.stats().watches.get("churn"),
            Some(&1),
            "kill {kill}: one upstream watch"
        );

        // A replacement, so that four followers remain.
        let mut fresh = churn_member(&format!("w{spawned}"), port, &up, &flags, bound_ms).await;
        spawned += 1;
        assert_eq!(
            fresh.worker.status().await,
            (false, epoch),
            "a newcomer follows the term"
        );
        let versions = versions_until_above(&mut fresh, published.load(Ordering::SeqCst)).await;
        check_batch(&mut fresh, &versions, None);
        members.push(fresh);
    }

    // After the last kill, no further gap at all.
    let now = published.load(Ordering::SeqCst);
    for member in &mut members {
        let versions = versions_until_above(member, now + 10).await;
        check_batch(member, &versions, None);
    }
    publisher.abort();
    for member in &mut members {
        for spin in [1, 2] {
            let totals = stop_spin(&mut member.worker, spin).await;
            assert!(
                totals["max_ms"].as_u64().expect("max_ms") <= bound_ms,
                "{}: {totals}",
                member.worker.name
            );
            assert!(
                totals["ok"].as_u64().expect("ok") > 0,
                "{}: {totals}",
                member.worker.name
            );
            calls += totals["ok"].as_u64().expect("ok");
        }
        check_spins(member, bound_ms, &mut errors);
        assert!(
            member.worker.is_running(),
            "{} is alive",
            member.worker.name
        );
        let panics = member.worker.panics();
        assert!(
            panics.is_empty(),
            "{} panicked: {panics:?}",
            member.worker.name
        );
    }
    terms.sort();
    resumes.sort();
    gaps.sort_unstable();
    eprintln!(
        "{KILLS} kills: new term everywhere after {:?} (min) / {:?} (median) / {:?} (max); every stream resumed after {:?} / {:?} / {:?}",
        terms[0],
        terms[terms.len() / 2],
        terms[terms.len() - 1],
        resumes[0],
        resumes[resumes.len() / 2],
        resumes[resumes.len() - 1]
    );
    eprintln!(
        "resume steps over all streams: {} (versions skipped: median {}, max {}); {calls} calls answered to the survivors, call errors: {errors:?}; items per surviving worker: {:?}",
        gaps.len(),
        gaps.get(gaps.len() / 2).copied().unwrap_or(0),
        gaps.last().copied().unwrap_or(0),
        members.iter().map(|m| m.items).collect::<Vec<_>>()
    );
}

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
