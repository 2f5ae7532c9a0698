//! Request ids of a follower connection: wrap-around with calls still pending, late answers to
//! calls that timed out, and late answers from an old connection after a reconnect. A scripted
//! leader answers over `tokio::io::duplex`, in whatever order the test wants.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::FollowerConn;
use crate::error::Error;
use crate::io::transport::{self, PacketReader, WriteHalf};
use crate::io::writer;
use crate::mailbox::Mailbox;
use crate::options::Options;
use crate::options::SlowConsumer;
use crate::protocol::conn::{Invoke, InvokeResult, RegisterChannelRes, Subscribe, SubscribeResult};
use crate::protocol::ids::ID_LIMIT;
use crate::protocol::{ConnObject, HEADER_LEN, Header, Kind, Packet};
use crate::service::{MethodKind, MethodSpec, Reply, Schema};

static SCHEMA: Schema = Schema {
    name: "Ids",
    fingerprint: 0x1d5,
    methods: &[
        MethodSpec::new("get", MethodKind::Invoke),
        MethodSpec::new("watch", MethodKind::Subscribe),
    ],
};

const WAIT: Duration = Duration::from_secs(5);

fn spec() -> &'static MethodSpec {
    SCHEMA.method("get").expect("the test schema's method")
}

/// The leader's end of a duplex pipe, driven by the test.
struct ScriptedLeader {
    reader: PacketReader,
    write: WriteHalf,
}

impl ScriptedLeader {
    async fn next(&mut self) -> Packet {
        tokio::time::timeout(WAIT, self.reader.next())
            .await
            .expect("a packet within the bound")
            .expect("the follower keeps the connection")
            .expect("a well-formed packet")
    }

    async fn send(&mut self, packet: &Packet) -> std::io::Result<()> {
        let frame = writer::encode(packet).expect("encodes");
        self.write.write_all(&frame).await
    }

    /// Answers call `id` with the value `tag`.
    async fn answer(&mut self, id: i64, tag: &str) -> std::io::Result<()> {
        let conn = ConnObject::InvokeResult(InvokeResult {
            success: true,
            fault: None,
        });
        self.send(&Packet::response(
            id,
            0,
            conn,
            Bytes::copy_from_slice(tag.as_bytes()),
        ))
        .await
    }
}

/// A registered follower connection and the scripted leader at its other end.
async fn connect() -> (Arc<FollowerConn>, ScriptedLeader) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(ours);
    let (their_read, their_write) = tokio::io::split(theirs);
    let mut leader = ScriptedLeader {
        reader: transport::reader(Box::pin(their_read), 1 << 20),
        write: Box::pin(their_write),
    };
    let options = Options::new("ids").heartbeat_check(false);
    let join = tokio::spawn(async move {
        FollowerConn::register(Box::pin(read), Box::pin(write), &options, &SCHEMA, "ids").await
    });
    let register = leader.next().await;
    let accepted = ConnObject::RegisterChannelRes(RegisterChannelRes {
        success: Some(true),
        epoch: Some(1),
        push_ack: Some(false),
        // A leader of this crate, which says when a topic is live.
        leader_pid: Some(1),
        ..RegisterChannelRes::default()
    });
    leader
        .send(&Packet::response(register.id, 0, accepted, Bytes::new()))
        .await
        .expect("answer the registration");
    let conn = join
        .await
        .expect("register does not panic")
        .expect("registered");
    (conn, leader)
}

/// Starts a call; the leader reads it, and the test learns its id.
async fn start_call(
    conn: &Arc<FollowerConn>,
    leader: &mut ScriptedLeader,
    deadline: Duration,
) -> (i64, JoinHandle<Result<Reply, Error>>) {
    let task = {
        let conn = Arc::clone(conn);
        tokio::spawn(async move { conn.call(spec(), 0, Bytes::new(), false, deadline).await })
    };
    let packet = leader.next().await;
    assert!(
        matches!(packet.conn, ConnObject::Invoke(Invoke { .. })),
        "{packet:?}"
    );
    (packet.id, task)
}

fn value(tag: &str) -> Reply {
    Reply::Value(Bytes::copy_from_slice(tag.as_bytes()))
}

#[tokio::test]
async fn ids_wrap_around_past_calls_still_pending() {
    let (conn, mut leader) = connect().await;
    // Two calls pending on ids 1 and 2 ...
    conn.ids.restart_at(1);
    let mut calls = Vec::new();
    for name in ["a", "b"] {
        calls.push((name, start_call(&conn, &mut leader, WAIT).await));
    }
    // ... while the counter reaches the end of the range and wraps.
    conn.ids.restart_at(ID_LIMIT - 1);
    for name in ["c", "d", "e"] {
        calls.push((name, start_call(&conn, &mut leader, WAIT).await));
    }
    let ids: Vec<i64> = calls.iter().map(|(_, (id, _))| *id).collect();
    assert_eq!(
        ids,
        [1, 2, ID_LIMIT - 1, 3, 4],
        "the wrap skips the ids of pending calls"
    );
    assert!(ids.iter().all(|id| (1..ID_LIMIT).contains(id)));

    // Answers in another order, an answer nobody waits for, and a second answer to a finished call.
    let order = [3, 0, 4, 2, 1];
    leader.answer(999, "stray").await.expect("sent");
    for &i in &order {
        let (name, (id, _)) = &calls[i];
        leader
            .answer(*id, &format!("for {name}"))
            .await
            .expect("sent");
        if i == 3 {
            leader.answer(*id, "again").await.expect("sent");
        }
    }
    for (name, (id, task)) in calls {
        let reply = tokio::time::timeout(WAIT, task)
            .await
            .expect("answered within the bound")
            .expect("no panic");
        assert_eq!(
            reply.expect("a value"),
            value(&format!("for {name}")),
            "call {name} (id {id}) got its own answer"
        );
    }
    assert!(conn.pending.is_empty(), "nothing left pending");
}

#[tokio::test]
async fn a_late_answer_to_a_timed_out_call_reaches_no_other_call() {
    let (conn, mut leader) = connect().await;
    let (late_id, late) = start_call(&conn, &mut leader, Duration::from_millis(50)).await;
    let result = late.await.expect("no panic");
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    let (id, call) = start_call(&conn, &mut leader, WAIT).await;
    assert_ne!(id, late_id);
    leader.answer(late_id, "late").await.expect("sent");
    leader.answer(id, "fresh").await.expect("sent");
    let reply = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered")
        .expect("no panic");
    assert_eq!(reply.expect("a value"), value("fresh"));
    assert!(conn.pending.is_empty());
}

#[tokio::test]
async fn a_late_answer_on_the_old_connection_cannot_reach_a_new_call() {
    let (old, mut old_leader) = connect().await;
    let (old_id, in_flight) = start_call(&old, &mut old_leader, WAIT).await;
    // The leader is lost (as when its heartbeats go unanswered): the call in flight fails.
    old.close();
    let result = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("failed within the bound")
        .expect("no panic");
    assert!(
        matches!(result, Err(Error::LeaderLost { .. })),
        "{result:?}"
    );

    // The reconnect numbers its calls from the start again: the new call has the old one's id.
    let (new, mut new_leader) = connect().await;
    let (new_id, call) = start_call(&new, &mut new_leader, WAIT).await;
    assert_eq!(new_id, old_id, "ids restart on a new connection");
    // The old leader wakes up and answers on the old connection (the write may fail: the follower
    // closed its side). Whatever happens there must not reach the new call.
    let _ = old_leader.answer(old_id, "stale").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!call.is_finished(), "the stale answer reached nothing");
    new_leader.answer(new_id, "fresh").await.expect("sent");
    let reply = tokio::time::timeout(WAIT, call)
        .await
        .expect("answered")
        .expect("no panic");
    assert_eq!(reply.expect("a value"), value("fresh"));
    assert!(old.pending.is_empty() && new.pending.is_empty());
}

/// A request frame with `conn` as its connection object's text, byte for byte.
fn push_frame(id: i64, conn: &str, item: &[u8]) -> Vec<u8> {
    let header = Header {
        kind: Kind::Request,
        reserved: 0,
        id,
        timeout: 0,
        conn_len: conn.len() as u32,
        app_len: item.len() as u32,
    };
    let mut frame = Vec::with_capacity(HEADER_LEN + conn.len() + item.len());
    header.write(&mut frame);
    frame.extend_from_slice(conn.as_bytes());
    frame.extend_from_slice(item);
    frame
}

#[tokio::test]
async fn pushes_are_matched_by_their_text_or_by_what_they_mean() {
    let (conn, mut leader) = connect().await;
    let watch = SCHEMA.method("watch").expect("the test schema's method");
    let key: Arc<str> = Arc::from(r#"$$inner$$__["a/b"]"#);
    let mailbox = Arc::new(Mailbox::new("watch", 8, SlowConsumer::KeepLatest));
    conn.subscribe(watch, &key, &Bytes::new(), 1, &mailbox);
    let subscribe = leader.next().await;
    assert!(
        matches!(subscribe.conn, ConnObject::Subscribe(Subscribe { .. })),
        "{subscribe:?}"
    );

    // As this crate writes it (matched by its text), then with the fields in another order and an
    // escaped solidus (parsed), then the end of the topic.
    let ours = Packet::request(
        7,
        0,
        ConnObject::SubscribeResult(SubscribeResult {
            key: key.to_string(),
            method: Some("watch".into()),
            end: None,
            typed: false,
            request: None,
        }),
        Bytes::from_static(b"one"),
    );
    leader.send(&ours).await.expect("push");
    let theirs = r#"{"method":"watch","key":"$$inner$$__[\"a\/b\"]","type":"subscribe_result"}"#;
    leader
        .write
        .write_all(&push_frame(8, theirs, b"two"))
        .await
        .expect("push");
    let end =
        r#"{"type":"subscribe_result","key":"$$inner$$__[\"a/b\"]","method":"watch","end":"gone"}"#;
    leader
        .write
        .write_all(&push_frame(9, end, b""))
        .await
        .expect("push");
    let items: Vec<Bytes> = tokio::time::timeout(
        WAIT,
        futures::stream::poll_fn(|cx| mailbox.poll_next(cx)).collect(),
    )
    .await
    .expect("the topic ends within the bound");
    assert_eq!(items, [&b"one"[..], &b"two"[..]]);
    assert!(
        matches!(&mailbox.close_reason(), Some(Error::SubscriptionEnded { reason, .. }) if reason == "gone"),
        "{:?}",
        mailbox.close_reason()
    );
}

/// When the leader is lost, a call whose bytes never left this process (still in the outbox,
/// behind a socket that took no more) is `Unsent`, free to go to the next leader; a call the socket
/// took, even in part, is on the wire and fails with `LeaderLost`.
#[tokio::test]
async fn calls_not_yet_written_when_the_leader_is_lost_are_unsent() {
    use super::CallError;

    let (conn, leader) = connect().await;
    // The pipe holds 64 KiB and the leader reads none of it: of twelve 16 KiB calls, the first few
    // fill the pipe and the rest wait in the outbox.
    let mut calls = Vec::new();
    for _ in 0..12 {
        let conn = Arc::clone(&conn);
        calls.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            conn.call_until(
                spec(),
                0,
                Bytes::from(vec![0u8; 16 << 10]),
                false,
                deadline,
                WAIT,
            )
            .await
        }));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(leader);
    let (mut on_the_wire, mut unsent) = (0, 0);
    for call in calls {
        match tokio::time::timeout(WAIT, call)
            .await
            .expect("ends")
            .expect("no panic")
        {
            Err(CallError::Failed(Error::LeaderLost { .. })) => on_the_wire += 1,
            Err(CallError::Unsent) => unsent += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(
        (4..=6).contains(&on_the_wire),
        "the pipe took {on_the_wire} calls"
    );
    assert_eq!(on_the_wire + unsent, 12);
}

/// A topic dropped and subscribed again at once: the leader's notices for the first subscription
/// (sent before it read the unsubscribe) name the first request, and neither mark the second
/// live nor end it. Only its own do.
#[tokio::test]
async fn notices_of_a_dropped_subscription_do_not_touch_its_successor() {
    use crate::protocol::conn::{SubscribeReady, UnSubscribe};

    let (conn, mut leader) = connect().await;
    let watch = SCHEMA.method("watch").expect("the test schema's method");
    let key: Arc<str> = Arc::from(r#"$$inner$$__"k""#);
    let first = Arc::new(Mailbox::new("watch", 8, SlowConsumer::KeepLatest));
    conn.subscribe(watch, &key, &Bytes::new(), 1, &first);
    let old = leader.next().await;
    assert!(matches!(old.conn, ConnObject::Subscribe(_)), "{old:?}");
    conn.unsubscribe(watch, &key, 1);
    let unsubscribe = leader.next().await;
    assert!(
        matches!(
            unsubscribe.conn,
            ConnObject::UnSubscribe(UnSubscribe { .. })
        ),
        "{unsubscribe:?}"
    );
    let second = Arc::new(Mailbox::new("watch", 8, SlowConsumer::KeepLatest));
    conn.subscribe(watch, &key, &Bytes::new(), 2, &second);
    let new = leader.next().await;
    assert!(matches!(new.conn, ConnObject::Subscribe(_)), "{new:?}");
    assert_ne!(old.id, new.id, "each subscribe is its own request");

    let ready = |request| {
        Packet::request(
            20,
            0,
            ConnObject::SubscribeReady(SubscribeReady {
                key: key.to_string(),
                method: "watch".into(),
                request: Some(request),
            }),
            Bytes::new(),
        )
    };
    let push = |end: Option<&str>, request| {
        Packet::request(
            21,
            0,
            ConnObject::SubscribeResult(SubscribeResult {
                key: key.to_string(),
                method: Some("watch".into()),
                end: end.map(str::to_owned),
                typed: false,
                request,
            }),
            Bytes::from_static(b"item"),
        )
    };
    // The old subscription's notices, then an item: once the item is read, so were they.
    leader.send(&ready(old.id)).await.expect("push");
    leader
        .send(&push(Some("old topic ended"), Some(old.id)))
        .await
        .expect("push");
    leader.send(&push(None, None)).await.expect("push");
    let mut items = futures::stream::poll_fn(|cx| second.poll_next(cx));
    let item = tokio::time::timeout(WAIT, items.next()).await;
    assert_eq!(item, Ok(Some(Bytes::from_static(b"item"))));
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    assert!(
        second.poll_live(&mut cx).is_pending(),
        "the old topic's notice marked the new one live"
    );
    assert!(
        second.close_reason().is_none(),
        "the old topic's end ended the new one: {:?}",
        second.close_reason()
    );

    // Its own notices do.
    leader.send(&ready(new.id)).await.expect("push");
    let live = tokio::time::timeout(WAIT, std::future::poll_fn(|cx| second.poll_live(cx))).await;
    assert!(matches!(live, Ok(Ok(()))), "{live:?}");
    leader
        .send(&push(Some("new topic ended"), Some(new.id)))
        .await
        .expect("push");
    let rest: Vec<Bytes> = tokio::time::timeout(WAIT, items.collect())
        .await
        .expect("the topic ends within the bound");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        matches!(&second.close_reason(), Some(Error::SubscriptionEnded { reason, .. }) if reason == "new topic ended"),
        "{:?}",
        second.close_reason()
    );
}

/// A leader that reads nothing: once the pipe and the outbox are full, a call waits for room only
/// until its deadline, and ends with `Timeout` (before, it waited for ever, and so did the
/// heartbeat, so the frozen leader was never given up).
#[tokio::test]
async fn a_call_waiting_for_room_ends_at_its_deadline() {
    let (conn, _leader) = connect().await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let mut calls = Vec::new();
    for _ in 0..16 {
        let conn = Arc::clone(&conn);
        calls.push(tokio::spawn(async move {
            let big = Bytes::from(vec![0u8; 1 << 20]);
            conn.call_until(spec(), 0, big, false, deadline, WAIT).await
        }));
    }
    for call in calls {
        let ended = tokio::time::timeout(WAIT, call)
            .await
            .expect("the call ends within the bound")
            .expect("no panic");
        assert!(
            matches!(ended, Err(super::CallError::Failed(Error::Timeout { .. }))),
            "{ended:?}"
        );
    }
}
