//! Lengths that lie inside an application object: a member never allocates what they claim.

use bytes::BytesMut;
use cluster_client::Codec;
use cluster_client::protocol::conn::{InvokeResult, SubscribeResult};
use cluster_client::protocol::{ConnObject, FaultCode, args::push_arg};
use cluster_client::transcode::Transcode;
use serde_json::json;

use crate::procfs::{PeakRss, vm_rss_kib};
use crate::raw::{Foreign, ForeignServer, Raw, frame, invoke_packet, push, watch_packet};
use crate::support::{WAIT, Worker, free_port, upstream};
use crate::{SEAM, SLACK, assert_no_panics, assert_rss_within, start_spin, stop_spin};

/// A bincode string whose length prefix claims 2^40 bytes: `0xfd`, then the length as a
/// little-endian u64. Nine bytes; framed as an argument, thirteen.
const HUGE_STRING: &[u8] = &[0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

/// How many of the lying invokes, then subscribes, the burst sends.
const BURST: i64 = 1000;

/// What the leader's RSS may grow by (one such allocation would be 1 TiB).
const RSS_MARGIN_KIB: u64 = 32 * 1024;

/// Application objects whose lengths lie cannot make a member allocate what they claim: a leader
/// answers `bad_arguments` for an invoke, ends the subscription for a subscribe, and serves on; a
/// follower given such a result by a squatter on the port gets a typed error and runs on. Before
/// the fix each of these aborted the process ("memory allocation of 1099511627776 bytes failed").
/// Prints `WHY 1`: the leader's RSS before, at its peak (sampled while a burst of 1,000 lying
/// invokes and 1,000 lying subscribes runs) and after, and what another follower's spin saw.
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
    let peak = PeakRss::start(leader.pid);

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
        ConnObject::InvokeResult(InvokeResult {
            success: false,
            fault: Some(fault),
        }) => assert_eq!(*fault, FaultCode::BadArguments),
        other => panic!("expected a bad_arguments fault, got {other:?}"),
    }
    let reason = String::from_utf8_lossy(&answer.app);
    eprintln!("a 13-byte argument claiming 2^40 bytes: {reason}");
    assert!(
        reason.contains("claims more bytes than the input holds"),
        "{reason}"
    );

    let mut subscribe = watch_packet(21, "lying", true);
    subscribe.app = hostile.clone().freeze();
    raw.send_packet(&subscribe).await;
    let end = raw
        .wait_for(WAIT, &mut kept, |p| {
            matches!(
                &p.conn,
                ConnObject::SubscribeResult(SubscribeResult { end: Some(_), .. })
            )
        })
        .await;
    eprintln!("a subscribe with that argument: {:?}", end.conn);
    // The same at scale: a burst of such invokes, then of such subscribes, on the same connection.
    let mut burst = Vec::new();
    for id in 0..BURST {
        burst.extend(frame(&invoke_packet(
            1000 + id,
            3000,
            "echo",
            1,
            hostile.clone().freeze(),
        )));
    }
    raw.send(&burst).await;
    let mut refused_invokes = 0;
    for _ in 0..BURST {
        let answer = raw.answer(WAIT, &mut kept).await;
        if matches!(
            &answer.conn,
            ConnObject::InvokeResult(InvokeResult {
                success: false,
                fault: Some(FaultCode::BadArguments),
            })
        ) {
            refused_invokes += 1;
        }
    }
    let mut burst = Vec::new();
    for id in 0..BURST {
        let mut subscribe = watch_packet(3000 + id, "lying", true);
        subscribe.app = hostile.clone().freeze();
        burst.extend(frame(&subscribe));
    }
    raw.send(&burst).await;
    let mut ended_subscribes = 0;
    for _ in 0..BURST {
        raw.wait_for(WAIT, &mut kept, |p| {
            matches!(
                &p.conn,
                ConnObject::SubscribeResult(SubscribeResult { end: Some(_), .. })
            )
        })
        .await;
        ended_subscribes += 1;
    }
    let mut good = BytesMut::new();
    push(&mut good, &"after".to_owned());
    raw.send_packet(&invoke_packet(22, 3000, "echo", 1, good.freeze()))
        .await;
    let answer = raw.answer(WAIT, &mut kept).await;
    let echoed: String = Codec::default().decode(&answer.app).expect("a string");
    assert_eq!(echoed, "after", "the same connection is still served");

    let rss_peak = peak.stop().await;
    let rss_after = vm_rss_kib(leader.pid);
    let totals = stop_spin(&mut follower, 78).await;
    eprintln!(
        "WHY 1: a registered connection sends echo(String) with a 13-byte argument whose bincode \
         length claims 2^40 bytes, then a subscribe with it, then {BURST} of each in two bursts: \
         every invoke answered bad_arguments ({} of {}), every subscribe ended ({}), the \
         connection served on; leader VmRSS {rss_before} before / {} peak ({} samples) / \
         {rss_after} after KiB (bound: peak < before + {RSS_MARGIN_KIB} KiB); the other \
         follower's spin meanwhile: {totals}",
        refused_invokes + 1,
        BURST + 1,
        ended_subscribes + 1,
        rss_peak.kib,
        rss_peak.samples,
    );
    assert_eq!(refused_invokes, BURST, "every invoke of the burst refused");
    assert_rss_within(rss_before, &rss_peak, RSS_MARGIN_KIB);
    assert!(
        rss_after < rss_before + RSS_MARGIN_KIB,
        "{rss_before} KiB -> {rss_after} KiB"
    );
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
    // Auth off: this is how the Node interop runs, and the bound must hold there too.
    let mut victim = Worker::ready("victim", SEAM, squatter.port, &up, &["--no-auth"]).await;
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
