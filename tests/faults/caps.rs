//! The leader's caps: each is an option, and each is enforced.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use cluster_client::Codec;
use cluster_client::protocol::conn::{InvokeResult, RegisterChannelRes, SubscribeResult};
use cluster_client::protocol::{ConnObject, FaultCode, RefusalCode};
use cluster_client::transcode::Transcode;
use cluster_client_registry_fixture::Endpoint;
use serde_json::json;
use tokio::time::Instant;

use crate::raw::{Raw, Read, frame, invoke_packet, push, register_packet, watch_packet};
use crate::support::{WAIT, Worker, endpoints_json, eventually, free_port, upstream, watches};
use crate::{SEAM, SLACK, assert_no_panics, expect_log, start_spin, stop_spin};

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
            matches!(
                answer.conn,
                ConnObject::InvokeResult(InvokeResult { success: true, .. })
            ),
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
            ConnObject::InvokeResult(InvokeResult {
                success: false,
                fault: Some(fault),
            }) => assert_eq!(*fault, FaultCode::Overloaded, "call {id}"),
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
        matches!(
            answer.conn,
            ConnObject::InvokeResult(InvokeResult { success: true, .. })
        ),
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
                matches!(&p.conn, ConnObject::SubscribeResult(SubscribeResult { key, end: Some(_), .. }) if key.contains(service))
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
    // It proves the secret first: only then does it learn about the cap.
    let mut over = Raw::connect(port).await;
    let packet = over.register("registry").await;
    match Read::Packet(packet) {
        Read::Packet(packet) => assert!(
            matches!(
                &packet.conn,
                ConnObject::RegisterChannelRes(RegisterChannelRes {
                    success: Some(false),
                    code: Some(RefusalCode::TooManyConnections),
                    ..
                })
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
            raw.send(&frame(&register_packet(1, "registry"))).await;
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
