//! A follower's calls are bounded at the leader: each runs within a deadline the leader grants,
//! counts against the follower's cap until its answer is queued, is cancelled when its connection
//! closes, and a follower that does not read its answers is closed as too slow instead of making
//! the leader wait or buffer without end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::duplex::{args, follower_with, leader_of, options, serve, spec};
use super::service::{SCHEMA, TestService};
use crate::service::Reply;

/// A frame built by hand (header, connection-object text, application object), as a peer that
/// follows no library would send it.
fn frame(id: i64, timeout: i32, conn: &str, app: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_u8(0);
    out.put_u16(0);
    out.put_i64(id);
    out.put_i32(timeout);
    out.put_u32(conn.len() as u32);
    out.put_u32(app.len() as u32);
    out.extend_from_slice(conn.as_bytes());
    out.extend_from_slice(app);
    out.to_vec()
}

fn invoke(id: i64, timeout: i32, method: &str, app: &Bytes) -> Vec<u8> {
    let conn = format!(r#"{{"type":"invoke","method":"{method}","argLength":1,"oneway":false}}"#);
    frame(id, timeout, &conn, app)
}

/// A raw connection to `leader`, registered; its answer to the registration is read.
async fn registered(leader: &Arc<crate::leader::LeaderChannel>, pipe: usize) -> DuplexStream {
    let (mut raw, theirs) = tokio::io::duplex(pipe);
    serve(leader, theirs);
    raw.write_all(&frame(
        1,
        1000,
        r#"{"type":"register_channel","channelName":"test"}"#,
        b"",
    ))
    .await
    .expect("written");
    let mut header = [0u8; 24];
    raw.read_exact(&mut header).await.expect("an answer");
    let len = u32::from_be_bytes(header[16..20].try_into().expect("4 bytes")) as usize
        + u32::from_be_bytes(header[20..24].try_into().expect("4 bytes")) as usize;
    let mut rest = vec![0u8; len];
    raw.read_exact(&mut rest).await.expect("the whole answer");
    assert!(
        String::from_utf8_lossy(&rest).contains(r#""success":true"#),
        "registered: {}",
        String::from_utf8_lossy(&rest)
    );
    raw
}

/// The text of what the leader sends next (one small answer), within 2 s.
async fn answer_text(raw: &mut DuplexStream) -> String {
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), raw.read(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// Reads until the leader closes the connection; the bytes read, or `None` if it stays open.
async fn read_until_closed(raw: &mut DuplexStream, within: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .ok()
}

/// A follower that asks for 64 KiB answers and never reads them is closed once 4 MiB wait for it;
/// another follower is served throughout. Before, the leader's reader waited for room without end
/// and every call held its answer: 1.5 GiB in 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_does_not_read_its_answers_is_closed_as_too_slow() {
    // No idle checks: only the unread answers may close the raw connection.
    let options = options().heartbeat_check(false);
    let leader = leader_of(&options, Arc::default());
    let good = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let mut raw = registered(&leader, 64 * 1024).await;
    let blob = args((64 * 1024u32,));
    // 400 calls of 64 KiB: 25 MiB of answers, far past what may wait for one follower (4 MiB
    // pending, plus the chunk being written).
    const CALLS: i64 = 400;
    for id in 0..CALLS {
        if raw
            .write_all(&invoke(10 + id, 5_000, "blob", &blob))
            .await
            .is_err()
        {
            break;
        }
    }
    let answered = good
        .call(
            spec("add"),
            2,
            args((2u32, 3u32)),
            false,
            Duration::from_secs(2),
        )
        .await
        .expect("the other follower is served");
    assert_eq!(answered, Reply::Value(args((5u32,)).slice(4..)));
    // The leader closes the connection that does not read while nothing reads it: the test reads
    // only once the leader has let it go (reading earlier would make room, and the leader would
    // rightly keep serving it). The good follower stays.
    let closed = async {
        while leader.follower_count() > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the leader lets go of the connection that does not read");
    let read = read_until_closed(&mut raw, Duration::from_secs(5)).await;
    let read = read.expect("the leader closed the connection that did not read");
    assert!(
        read < (CALLS as usize) * (64 << 10) / 2,
        "most answers were dropped with the connection, not held for it: {read} bytes read"
    );
    let again = good
        .call(
            spec("add"),
            2,
            args((1u32, 1u32)),
            false,
            Duration::from_secs(2),
        )
        .await;
    assert!(again.is_ok(), "{again:?}");
}

/// A call that asks for no deadline (0 or less) runs with `response_timeout`; one that asks for more
/// than `max_call_timeout` runs with that. Each then leaves the follower's cap: with a cap of one
/// call, the next call is served instead of refused as overloaded.
#[tokio::test]
async fn the_leader_grants_every_call_a_deadline() {
    let options = options()
        .heartbeat_check(false)
        .response_timeout(Duration::from_millis(200))
        .max_call_timeout(Duration::from_millis(300))
        .max_calls_per_follower(1);
    let service = Arc::new(TestService::default());
    let leader = leader_of(&options, Arc::clone(&service));
    let mut raw = registered(&leader, 1 << 16).await;
    let long = args((60_000u64,));
    for (asked, granted) in [(0, 200), (-5, 200), (i32::MAX, 300)] {
        raw.write_all(&invoke(20, asked, "sleep", &long))
            .await
            .expect("written");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(service.sleeping.load(Ordering::SeqCst), 1, "asked {asked}");
        tokio::time::sleep(Duration::from_millis(granted)).await;
        assert_eq!(
            service.sleeping.load(Ordering::SeqCst),
            0,
            "a call that asked for {asked} ms ran with {granted} ms"
        );
    }
    // The cap of one is free again: a quick call is answered with success, not `overloaded`.
    raw.write_all(&invoke(21, 1000, "sleep", &args((1u64,))))
        .await
        .expect("written");
    let text = answer_text(&mut raw).await;
    assert!(text.contains(r#""success":true"#), "{text}");
}

/// The calls of a follower whose connection closes are cancelled: they stop running at once, not at
/// their deadline.
#[tokio::test]
async fn the_calls_of_a_closed_connection_are_cancelled() {
    let options = options()
        .heartbeat_check(false)
        .max_call_timeout(Duration::from_secs(60));
    let service = Arc::new(TestService::default());
    let leader = leader_of(&options, Arc::clone(&service));
    let mut raw = registered(&leader, 1 << 16).await;
    for id in 0..3 {
        raw.write_all(&invoke(30 + id, 60_000, "sleep", &args((60_000u64,))))
            .await
            .expect("written");
    }
    for _ in 0..100 {
        if service.sleeping.load(Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(service.sleeping.load(Ordering::SeqCst), 3, "all three run");
    drop(raw);
    for _ in 0..100 {
        if service.sleeping.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        service.sleeping.load(Ordering::SeqCst),
        0,
        "cancelled when the connection closed"
    );
}

/// The calls that wait on the real client are capped for the whole channel, whichever followers
/// send them: with a cap of three, two connections' four sleeping calls run three, and the fourth is
/// answered `overloaded`; once they end, the cap is free again.
#[tokio::test]
async fn the_channel_caps_the_calls_that_wait_whoever_sends_them() {
    let options = options()
        .heartbeat_check(false)
        .max_calls(3)
        .max_call_timeout(Duration::from_millis(400));
    let service = Arc::new(TestService::default());
    let leader = leader_of(&options, Arc::clone(&service));
    let mut first = registered(&leader, 1 << 16).await;
    let mut second = registered(&leader, 1 << 16).await;
    let long = args((60_000u64,));
    for id in 0..2 {
        first
            .write_all(&invoke(40 + id, 60_000, "sleep", &long))
            .await
            .expect("written");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    second
        .write_all(&invoke(50, 60_000, "sleep", &long))
        .await
        .expect("written");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(service.sleeping.load(Ordering::SeqCst), 3);
    second
        .write_all(&invoke(51, 60_000, "sleep", &long))
        .await
        .expect("written");
    let text = answer_text(&mut second).await;
    assert!(text.contains("overloaded"), "{text}");
    assert_eq!(service.sleeping.load(Ordering::SeqCst), 3, "not run");
    // The three end at the granted deadline (400 ms); the cap is free again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(service.sleeping.load(Ordering::SeqCst), 0);
    second
        .write_all(&invoke(52, 1000, "sleep", &args((1u64,))))
        .await
        .expect("written");
    let text = answer_text(&mut second).await;
    assert!(text.contains(r#""success":true"#), "{text}");
}
