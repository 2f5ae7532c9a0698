use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::service::{SCHEMA, TestService};
use crate::arguments::EncodeArgs;
use crate::error::Error;
use crate::follower::{FollowerConn, JoinError};
use crate::io::transport::{self, ReadHalf, WriteHalf};
use crate::io::writer;
use crate::leader::LeaderChannel;
use crate::mailbox::Mailbox;
use crate::options::{Options, SlowConsumer};
use crate::protocol::budget::Budget;
use crate::protocol::conn::{RegisterChannel, RegisterChannelRes};
use crate::protocol::{ConnObject, FaultCode, FrameCodec, Packet, PacketCodec, RefusalCode};
use crate::server::{Registration, Serve};
use crate::service::{Reply, Schema};
use crate::transcode::{Codec, Transcode};

pub(super) fn halves(stream: DuplexStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = tokio::io::split(stream);
    (Box::pin(read), Box::pin(write))
}

pub(super) fn options() -> Options {
    Options::new("test")
        .response_timeout(Duration::from_millis(500))
        .heartbeat_interval(Duration::from_millis(100))
}

pub(super) fn leader(options: &Options) -> Arc<LeaderChannel> {
    leader_of(options, Arc::default())
}

pub(super) fn leader_of(options: &Options, service: Arc<TestService>) -> Arc<LeaderChannel> {
    LeaderChannel::new(
        "test".into(),
        &SCHEMA,
        options.clone(),
        crate::term::Term::new(7),
        service,
    )
}

/// Serves one end of a duplex pipe as the port server would: first packet, then the channel.
pub(super) fn serve(leader: &Arc<LeaderChannel>, stream: DuplexStream) {
    let leader = Arc::clone(leader);
    tokio::spawn(async move {
        let (read, write) = halves(stream);
        let mut reader = transport::reader(read, 1 << 20);
        let Some(Ok(first)) = reader.next().await else {
            return;
        };
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a fresh semaphore has a permit");
        let (_, registration) = Registration::from_packet(first, permit, Budget::new(64 << 20))
            .expect("register_channel first");
        let reader = reader.map_decoder(|_| FrameCodec::new(1 << 20));
        leader.serve(reader, write, registration);
    });
}

pub(super) async fn follower_with(
    leader: &Arc<LeaderChannel>,
    options: &Options,
    schema: &'static Schema,
) -> Result<Arc<FollowerConn>, JoinError> {
    let (a, b) = tokio::io::duplex(1 << 16);
    serve(leader, b);
    let (read, write) = halves(a);
    FollowerConn::register(read, write, options, schema, "test").await
}

pub(super) fn args<A: EncodeArgs>(a: A) -> Bytes {
    let mut out = BytesMut::new();
    a.encode(Codec::default(), &mut out).expect("encodes");
    out.freeze()
}

pub(super) fn spec(name: &str) -> &'static crate::service::MethodSpec {
    SCHEMA.method(name).expect("method of the test schema")
}

#[tokio::test]
async fn invoke_round_trip_and_the_methods_own_error() {
    let options = options();
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    assert_eq!(follower.epoch(), 7);
    let ok = follower
        .call(
            spec("add"),
            2,
            args((2u32, 3u32)),
            false,
            Duration::from_secs(1),
        )
        .await;
    assert_eq!(
        ok.expect("answered"),
        Reply::Value(args((5u32,)).slice(4..))
    );
    let err = follower
        .call(
            spec("add"),
            2,
            args((u32::MAX, 1u32)),
            false,
            Duration::from_secs(1),
        )
        .await;
    match err.expect("answered") {
        Reply::Error(bytes) => assert_eq!(
            Codec::default().decode::<String>(&bytes).expect("a string"),
            "overflow"
        ),
        other => panic!("expected the method's error, got {other:?}"),
    }
}

#[tokio::test]
async fn arguments_that_do_not_decode_are_a_typed_remote_error() {
    let options = options();
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    // One argument where `add` takes two.
    let err = follower
        .call(spec("add"), 1, args((2u32,)), false, Duration::from_secs(1))
        .await;
    assert!(
        matches!(
            err,
            Err(Error::Remote {
                name: FaultCode::BadArguments,
                ..
            })
        ),
        "{err:?}"
    );
    // A panic in the real client is answered, not lost.
    let err = follower
        .call(
            spec("panic"),
            0,
            Bytes::new(),
            false,
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(
            err,
            Err(Error::Remote {
                name: FaultCode::Panicked,
                ..
            })
        ),
        "{err:?}"
    );
    // The connection still serves.
    let ok = follower
        .call(
            spec("add"),
            2,
            args((1u32, 1u32)),
            false,
            Duration::from_secs(1),
        )
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn a_late_answer_is_not_sent_and_the_call_times_out() {
    let options = options();
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let started = std::time::Instant::now();
    let err = follower
        .call(
            spec("sleep"),
            1,
            args((400u64,)),
            false,
            Duration::from_millis(100),
        )
        .await;
    assert!(
        matches!(err, Err(Error::Timeout { ref method, ms: 100 }) if method == "sleep"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(390),
        "failed at its own deadline"
    );
    // The next call gets its own answer, not the late one.
    let ok = follower
        .call(
            spec("sleep"),
            1,
            args((1u64,)),
            false,
            Duration::from_secs(1),
        )
        .await;
    assert_eq!(
        ok.expect("answered"),
        Reply::Value(args((1u64,)).slice(4..))
    );
}

#[tokio::test]
async fn schema_and_codec_mismatches_are_refused_with_typed_errors() {
    static OTHER: Schema = Schema {
        name: "Test",
        fingerprint: 0x9999,
        methods: &[],
    };
    let options = options();
    let leader = leader(&options);
    match follower_with(&leader, &options, &OTHER).await {
        Err(JoinError::Refused(Error::SchemaMismatch { ours, theirs, .. })) => {
            assert_eq!(ours, OTHER.fingerprint_hex());
            assert_eq!(theirs, SCHEMA.fingerprint_hex());
        }
        other => panic!("expected a schema mismatch, got {:?}", other.err()),
    }
    let json = options.clone().codec(Codec::Json);
    match follower_with(&leader, &json, &SCHEMA).await {
        Err(JoinError::Refused(Error::Refused { code, .. })) => {
            assert_eq!(code, RefusalCode::CodecMismatch)
        }
        other => panic!("expected a codec mismatch, got {:?}", other.err()),
    }
}

/// Starts a call of `sleep(ms)` through `follower`, and gives it time to reach the leader.
async fn sleep_call(follower: &Arc<FollowerConn>, ms: u64) -> JoinHandle<Result<Reply, Error>> {
    let follower = Arc::clone(follower);
    let call = tokio::spawn(async move {
        follower
            .call(
                spec("sleep"),
                1,
                args((ms,)),
                false,
                Duration::from_secs(10),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    call
}

#[tokio::test]
async fn calls_in_flight_fail_at_once_when_the_leader_goes() {
    // No handover: the leader goes at once, as a crashed one would.
    let options = options().handover_timeout(Duration::ZERO);
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let call = sleep_call(&follower, 5_000).await;
    let started = std::time::Instant::now();
    leader.stop().await;
    let result = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("no hang")
        .expect("joined");
    assert!(
        matches!(result, Err(Error::LeaderLost { ref method }) if method == "sleep"),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(follower.is_lost());
}

/// A leader that stops tells its followers it is leaving, answers the calls they have in flight,
/// and stops once they have left (here the follower leaves once told, as a handle does once it has
/// moved to the successor).
#[tokio::test]
async fn a_leader_that_stops_hands_over_first() {
    let options = options().handover_timeout(Duration::from_secs(5));
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let call = sleep_call(&follower, 300).await;
    let stopping = {
        let leader = Arc::clone(&leader);
        tokio::spawn(async move { leader.stop().await })
    };
    tokio::time::timeout(Duration::from_secs(2), follower.leaving())
        .await
        .expect("the follower is told the leader is leaving");
    let result = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("no hang")
        .expect("joined");
    assert!(
        matches!(result, Ok(Reply::Value(_))),
        "answered: {result:?}"
    );
    assert!(!stopping.is_finished(), "the leader waits for its follower");
    follower.close();
    tokio::time::timeout(Duration::from_secs(2), stopping)
        .await
        .expect("the leader stops once its follower left")
        .expect("joined");
}

#[tokio::test]
async fn the_leader_closes_a_connection_that_falls_silent() {
    let options = options().heartbeat_interval(Duration::from_millis(50));
    let leader = leader(&options);
    // A follower with heartbeats off falls silent.
    let silent = options.clone().heartbeat_check(false);
    let follower = follower_with(&leader, &silent, &SCHEMA)
        .await
        .expect("registers");
    tokio::time::timeout(Duration::from_secs(2), follower.lost())
        .await
        .expect("closed after three silent intervals");
    // One that sends heartbeats stays.
    let chatty = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!chatty.is_lost());
}

#[tokio::test]
async fn a_bad_frame_closes_only_that_connection() {
    let options = options();
    let leader = leader(&options);
    let good = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let (mut raw, b) = tokio::io::duplex(1 << 16);
    serve(&leader, b);
    let register = ConnObject::RegisterChannel(RegisterChannel {
        channel_name: "test".into(),
        fingerprint: None,
        codec: None,
        pid: None,
        nonce: None,
        proof: None,
    });
    raw.write_all(
        &writer::encode(&Packet::request(1, 1000, register, Bytes::new())).expect("encodes"),
    )
    .await
    .expect("writes");
    let mut answer = vec![0u8; 256];
    let n = raw.read(&mut answer).await.expect("reads the answer");
    let mut buf = BytesMut::from(&answer[..n]);
    let packet = tokio_util::codec::Decoder::decode(&mut PacketCodec::default(), &mut buf)
        .expect("a frame")
        .expect("whole");
    assert!(matches!(
        packet.conn,
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(true),
            ..
        })
    ));
    // A header with version 9.
    let mut bad = [0u8; 24];
    bad[0] = 9;
    raw.write_all(&bad).await.expect("writes");
    let closed = tokio::time::timeout(Duration::from_secs(1), raw.read(&mut answer))
        .await
        .expect("closed, not hung");
    assert_eq!(closed.expect("eof"), 0);
    let ok = good
        .call(
            spec("add"),
            2,
            args((1u32, 2u32)),
            false,
            Duration::from_secs(1),
        )
        .await;
    assert!(ok.is_ok(), "the other follower is served: {ok:?}");
}

#[tokio::test]
async fn a_subscription_fans_out_and_ends_with_its_upstream() {
    let options = options();
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let mailbox = Arc::new(Mailbox::new("count", 16, SlowConsumer::KeepLatest));
    let key: Arc<str> = Arc::from("$$inner$$__3");
    follower.subscribe(spec("count"), &key, &args((3u32,)), 1, &mailbox);
    let mut items = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Some(bytes) = tokio::time::timeout_at(
        deadline,
        futures::future::poll_fn(|cx| mailbox.poll_next(cx)),
    )
    .await
    .expect("no hang")
    {
        items.push(Codec::default().decode::<u32>(&bytes).expect("a number"));
    }
    assert_eq!(items, [0, 1, 2]);
    assert!(matches!(
        mailbox.close_reason(),
        Some(Error::SubscriptionEnded { .. })
    ));
}

#[tokio::test]
async fn without_broadcast_each_item_goes_to_exactly_one_subscriber() {
    let options = options();
    let service = Arc::new(TestService::default());
    let leader = leader_of(&options, Arc::clone(&service));
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let key: Arc<str> = Arc::from("$$inner$$__null");
    let local = Arc::new(Mailbox::new("work", 64, SlowConsumer::KeepLatest));
    let remote = Arc::new(Mailbox::new("work", 64, SlowConsumer::KeepLatest));
    leader.subscribe_local(spec("work"), &key, &Bytes::new(), 1, &local);
    follower.subscribe(spec("work"), &key, &Bytes::new(), 1, &remote);
    // Wait until the follower's subscription reached the leader: one upstream receiver, two sinks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while service.feed.0.receiver_count() < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for item in 0..40u32 {
        service.feed.0.send(item).expect("a receiver");
    }
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while got.len() < 40 && tokio::time::Instant::now() < deadline {
        for mailbox in [&local, &remote] {
            let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
            while let std::task::Poll::Ready(Some(bytes)) = mailbox.poll_next(&mut cx) {
                got.push(Codec::default().decode::<u32>(&bytes).expect("a number"));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got.sort_unstable();
    assert_eq!(got, (0..40).collect::<Vec<_>>(), "every item exactly once");
    assert_eq!(
        service.feed.0.receiver_count(),
        1,
        "one upstream subscription"
    );
}

#[tokio::test]
async fn an_unanswered_heartbeat_counts_as_a_dead_leader() {
    let options = options()
        .heartbeat_interval(Duration::from_millis(50))
        .response_timeout(Duration::from_millis(100));
    let (a, mut b) = tokio::io::duplex(1 << 16);
    // A "leader" that accepts the registration, then never answers again.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let n = b.read(&mut buf).await.expect("reads the registration");
        let mut frame = BytesMut::from(&buf[..n]);
        let register = tokio_util::codec::Decoder::decode(&mut PacketCodec::default(), &mut frame)
            .expect("a frame")
            .expect("whole");
        let ok = ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(true),
            epoch: Some(1),
            push_ack: Some(false),
            ..RegisterChannelRes::default()
        });
        let answer =
            writer::encode(&Packet::response(register.id, 0, ok, Bytes::new())).expect("encodes");
        b.write_all(&answer).await.expect("writes");
        while b.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let (read, write) = halves(a);
    let follower = FollowerConn::register(read, write, &options, &SCHEMA, "test")
        .await
        .expect("registers");
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(2), follower.lost())
        .await
        .expect("declared dead");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "not before a heartbeat went unanswered"
    );
}
