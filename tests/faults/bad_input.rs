//! Bad input on a live leader's port: each bad connection is closed with a logged reason, a
//! well-formed packet the leader cannot serve gets a typed fault, memory stays bounded, and a
//! well-behaved follower's calls keep succeeding throughout.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_client::Codec;
use cluster_client::protocol::conn::{Heartbeat, HeartbeatRes, InvokeResult};
use cluster_client::protocol::{ConnObject, FaultCode, Packet, args::push_arg};
use cluster_client::transcode::Transcode;
use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::procfs::{TCP_CLOSE_WAIT, TCP_ESTABLISHED, tcp_states, vm_rss_kib};
use crate::raw::{Raw, frame, header, invoke_packet, push, raw_request, register_packet};
use crate::support::{WAIT, Worker, eventually, free_port, upstream};
use crate::{SEAM, SLACK, assert_no_panics, expect_log, start_spin, stop_spin};

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

/// The leader's window for warnings about its peers (at most 10 in one).
const LOG_WINDOW: Duration = Duration::from_millis(1100);

/// A gap between two warnings that keeps them under the leader's limit of 10 a second.
const LOG_SPACING: Duration = Duration::from_millis(120);

/// Bytes the leader answers by closing the connection, and the words of the log line that says
/// why.
struct Closing {
    what: &'static str,
    bytes: Vec<u8>,
    /// Half-close the connection after the bytes (they are a frame cut short).
    cut: bool,
    log: Vec<&'static str>,
}

/// A frame cut `short` bytes short.
fn cut(frame: Vec<u8>, short: usize) -> Vec<u8> {
    frame[..frame.len() - short].to_vec()
}

/// What closes a connection that has not registered.
fn unregistered_cases() -> Vec<Closing> {
    let mut cases: Vec<Closing> = first_frame_cases()
        .into_iter()
        .map(|(what, bytes, words)| Closing {
            what,
            bytes,
            cut: false,
            log: vec!["bad first frame", words],
        })
        .collect();
    cases.extend([
        Closing {
            what: "a first packet that is not register_channel",
            bytes: frame(&Packet::request(
                1,
                0,
                ConnObject::Heartbeat(Heartbeat {}),
                Bytes::new(),
            )),
            cut: false,
            log: vec!["first packet is not a register_channel"],
        },
        // Before registering, a frame may not be large (a register_channel takes a few hundred
        // bytes): a peer that never registers cannot make the leader buffer `max_frame_size`
        // (8 MiB) bytes.
        Closing {
            what: "a 1 MiB first frame",
            bytes: header(1, 0, 1, 3000, 20, 1 << 20),
            cut: false,
            log: vec!["bad first frame", "exceeds the limit of 65536 bytes"],
        },
        Closing {
            what: "a frame cut short, then a close",
            bytes: cut(frame(&register_packet(1, "registry")), 5),
            cut: true,
            log: vec!["bad first frame", "bytes remaining"],
        },
    ]);
    cases
}

/// What closes a registered follower connection.
fn registered_cases() -> Vec<Closing> {
    let mut cases: Vec<Closing> = first_frame_cases()
        .into_iter()
        .map(|(what, bytes, words)| Closing {
            what,
            bytes,
            cut: false,
            log: vec!["closing a follower connection: bad frame", words],
        })
        .collect();
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
        cases.push(Closing {
            what,
            bytes: raw_request(5, conn, b""),
            cut: false,
            log: vec!["closing a follower connection", "unexpected packet type"],
        });
    }
    cases.push(Closing {
        what: "a frame cut short, then a close",
        bytes: cut(
            frame(&Packet::request(
                2,
                0,
                ConnObject::Heartbeat(Heartbeat {}),
                Bytes::new(),
            )),
            3,
        ),
        cut: true,
        log: vec![
            "closing a follower connection: bad frame",
            "bytes remaining",
        ],
    });
    cases
}

/// Sends `case` on `raw`; the leader must close the connection and log why.
async fn expect_closed(leader: &mut Worker, mut raw: Raw, registered: bool, case: &Closing) {
    // The leader logs at most 10 warnings a second about its peers: spaced out, every case's line
    // is logged.
    tokio::time::sleep(LOG_SPACING).await;
    raw.send(&case.bytes).await;
    if case.cut {
        raw.stream.shutdown().await.expect("half-close");
    }
    let closed = raw.closed_within(WAIT).await;
    let which = if registered { "registered" } else { "new" };
    assert!(
        closed.is_some(),
        "the leader closes a {which} connection after {}",
        case.what
    );
    expect_log(leader, &case.log).await;
}

/// Before `register_channel`: garbage, oversized frames, and connections that never register.
async fn before_registering(leader: &mut Worker, port: u16, rss_before: u64) {
    for case in unregistered_cases() {
        expect_closed(leader, Raw::connect(port).await, false, &case).await;
    }
    // Fifty 1 MiB first frames at once, each 1 MiB of an announced 8 MiB frame, buffer nothing.
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
    // The fifty closes used up this second's warnings: let the window pass.
    tokio::time::sleep(LOG_WINDOW).await;
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
        expect_log(leader, &["did not register in time"]).await;
    }
}

/// Well-formed packets the leader cannot serve are answered with a typed fault, and the
/// connection stays usable.
async fn unservable_packets(port: u16) {
    let mut raw = Raw::registered(port, "registry").await;
    let mut pushes = Vec::new();
    let mut bad_utf8 = BytesMut::new();
    push_arg(&mut bad_utf8, &[1, 0xff]);
    let mut good = BytesMut::new();
    push(&mut good, &"still here".to_owned());
    let cases: Vec<(&str, Packet, FaultCode)> = vec![
        (
            "an unknown method",
            invoke_packet(10, 3000, "no_such_method", 0, Bytes::new()),
            FaultCode::UnknownMethod,
        ),
        (
            "a subscribe method invoked",
            invoke_packet(11, 3000, "watch", 1, good.clone().freeze()),
            FaultCode::UnknownMethod,
        ),
        (
            "arguments that do not decode",
            invoke_packet(12, 3000, "echo", 1, bad_utf8.freeze()),
            FaultCode::BadArguments,
        ),
        (
            "a missing argument",
            invoke_packet(13, 3000, "echo", 0, Bytes::new()),
            FaultCode::BadArguments,
        ),
        (
            "an argument too many",
            invoke_packet(14, 3000, "echo", 2, good.clone().freeze()),
            FaultCode::BadArguments,
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
            FaultCode::BadArguments,
        ),
    ];
    for (what, packet, fault) in cases {
        let id = packet.id;
        raw.send_packet(&packet).await;
        let answer = raw.answer(WAIT, &mut pushes).await;
        assert_eq!(answer.id, id, "{what}: answered with its own id");
        match &answer.conn {
            ConnObject::InvokeResult(InvokeResult {
                success: false,
                fault: Some(found),
            }) => assert_eq!(*found, fault, "{what}"),
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
        ConnObject::InvokeResult(InvokeResult {
            success: true,
            fault: None
        })
    ));
    let echoed: String = Codec::default().decode(&answer.app).expect("a string");
    assert_eq!(echoed, "still here", "the connection still serves calls");
    // Once registered, frames up to `max_frame_size` are fine: a heartbeat carrying 1 MiB (not an
    // echo: the upstream registry would drop the real client's connection over a 1 MiB line).
    raw.send_packet(&Packet::request(
        17,
        3000,
        ConnObject::Heartbeat(Heartbeat {}),
        Bytes::from(vec![0u8; 1 << 20]),
    ))
    .await;
    let answer = raw.answer(WAIT, &mut pushes).await;
    assert_eq!(answer.id, 17);
    assert_eq!(
        answer.conn,
        ConnObject::HeartbeatRes(HeartbeatRes {}),
        "a 1 MiB frame is read"
    );
}

/// 10,000 connections opened and dropped, 50 at a time: the leader's side of every one goes away;
/// the follower's stays.
async fn many_connections(port: u16) {
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
    eventually("the leader closed every dropped connection", || async {
        let states = tcp_states(port);
        let established = states.iter().filter(|s| **s == TCP_ESTABLISHED).count();
        let close_wait = states.iter().filter(|s| **s == TCP_CLOSE_WAIT).count();
        (established == 1 && close_wait == 0).then_some(())
    })
    .await;
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

    before_registering(&mut leader, port, rss_before).await;
    // After registering: the same garbage, and more, closes the follower connection.
    for case in registered_cases() {
        expect_closed(
            &mut leader,
            Raw::registered(port, "registry").await,
            true,
            &case,
        )
        .await;
    }
    unservable_packets(port).await;
    many_connections(port).await;
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
