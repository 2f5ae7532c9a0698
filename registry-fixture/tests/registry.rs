//! The embedded upstream registry, over real loopback sockets.
//!
//! Every wait is bounded in time, every loop in count.

use std::process::Stdio;
use std::time::Duration;

use cluster_client_registry_fixture::{
    Endpoint, RegistryConn, RegistryError, RegistryServer, WatchStream,
};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(1);

async fn server() -> RegistryServer {
    RegistryServer::start("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port")
}

async fn conn(server: &RegistryServer) -> RegistryConn {
    RegistryConn::connect(server.local_addr())
        .await
        .expect("connect")
}

fn ep(host: &str, port: u16) -> Endpoint {
    Endpoint::new(host, port)
}

/// The next value of a watch stream, within [`WAIT`].
async fn next(stream: &mut WatchStream) -> Vec<Endpoint> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an update within the bound")
        .expect("the stream is still open")
}

/// Reads until the peer closes the connection (EOF or reset), at most [`WAIT`]. Returns whether
/// it did close.
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..10_000 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
    false
}

/// Sends one raw line and reads one raw line back.
async fn raw_exchange(reader: &mut BufReader<TcpStream>, line: &str) -> serde_json::Value {
    reader
        .get_mut()
        .write_all(line.as_bytes())
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(WAIT, reader.read_line(&mut answer))
        .await
        .expect("an answer within the bound")
        .expect("read");
    serde_json::from_str(&answer).expect("the answer is JSON")
}

#[tokio::test]
async fn lookup_register_deregister() {
    let server = server().await;
    server.set("billing", vec![ep("10.0.0.1", 80)]);
    let client = conn(&server).await;

    assert_eq!(client.lookup("billing").await, Ok(vec![ep("10.0.0.1", 80)]));
    assert_eq!(client.lookup("unknown").await, Ok(vec![]));

    client
        .register("billing", ep("10.0.0.2", 81))
        .await
        .expect("register");
    client
        .register("billing", ep("10.0.0.2", 81))
        .await
        .expect("register twice");
    assert_eq!(
        client.lookup("billing").await,
        Ok(vec![ep("10.0.0.1", 80), ep("10.0.0.2", 81)])
    );
    client
        .deregister("billing", ep("10.0.0.1", 80))
        .await
        .expect("deregister");
    assert_eq!(client.lookup("billing").await, Ok(vec![ep("10.0.0.2", 81)]));
    assert_eq!(server.lookup("billing"), vec![ep("10.0.0.2", 81)]);
    assert_eq!(
        client.echo("ping \"quoted\"\n").await.as_deref(),
        Ok("ping \"quoted\"\n")
    );
}

#[tokio::test]
async fn watch_gets_the_current_value_then_every_change_in_order() {
    let server = server().await;
    server.set("svc", vec![ep("a", 1)]);
    let client = conn(&server).await;
    let mut updates = client.watch("svc").await.expect("watch");
    assert_eq!(next(&mut updates).await, vec![ep("a", 1)]);

    server.set("svc", vec![ep("b", 2)]);
    server.set("svc", vec![ep("b", 2), ep("c", 3)]);
    client.register("svc", ep("d", 4)).await.expect("register");
    client
        .deregister("svc", ep("b", 2))
        .await
        .expect("deregister");
    assert_eq!(next(&mut updates).await, vec![ep("b", 2)]);
    assert_eq!(next(&mut updates).await, vec![ep("b", 2), ep("c", 3)]);
    assert_eq!(
        next(&mut updates).await,
        vec![ep("b", 2), ep("c", 3), ep("d", 4)]
    );
    assert_eq!(next(&mut updates).await, vec![ep("c", 3), ep("d", 4)]);

    // A service nobody set starts empty.
    let mut empty = client.watch("nothing").await.expect("watch");
    assert_eq!(next(&mut empty).await, vec![]);

    // A second stream of the same service on the same connection starts from the latest value,
    // and the server still counts one watching connection.
    let mut again = client.watch("svc").await.expect("watch again");
    assert_eq!(next(&mut again).await, vec![ep("c", 3), ep("d", 4)]);
    assert_eq!(server.stats().watches.get("svc"), Some(&1));
    server.set("svc", vec![]);
    assert_eq!(next(&mut updates).await, vec![]);
    assert_eq!(next(&mut again).await, vec![]);
}

#[tokio::test]
async fn live_connections_follow_the_sockets() {
    let server = server().await;
    let first = conn(&server).await;
    let second = conn(&server).await;
    assert!(server.wait_for_live_connections(2, WAIT).await);
    assert_eq!(first.stats().await.map(|s| s.live_connections), Ok(2));

    first.close().await;
    assert!(first.is_closed());
    assert_eq!(first.lookup("x").await, Err(RegistryError::Closed));
    assert!(server.wait_for_live_connections(1, WAIT).await);

    drop(second);
    assert!(server.wait_for_live_connections(0, WAIT).await);
    let stats = server.stats();
    assert_eq!((stats.live_connections, stats.total_connections), (0, 2));

    // A bounded wait that cannot succeed says so.
    assert!(
        !server
            .wait_for_live_connections(5, Duration::from_millis(20))
            .await
    );
}

#[tokio::test]
async fn a_reset_socket_counts_as_closed() {
    // What the server sees when a client process is killed with SIGKILL: the kernel closes its
    // sockets; with SO_LINGER 0 that is a reset rather than a FIN.
    let server = server().await;
    let raw = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert!(server.wait_for_live_connections(1, WAIT).await);
    raw.set_zero_linger().expect("SO_LINGER 0");
    drop(raw);
    assert!(server.wait_for_live_connections(0, WAIT).await);
}

#[tokio::test]
async fn watch_counts_go_up_and_down() {
    let server = server().await;
    let a = conn(&server).await;
    let b = conn(&server).await;
    let wa = a.watch("svc").await.expect("watch a");
    let _wb = b.watch("svc").await.expect("watch b");
    let _other = b.watch("other").await.expect("watch other");
    let stats = server.stats();
    assert_eq!(stats.watches.get("svc"), Some(&2));
    assert_eq!(stats.watches.get("other"), Some(&1));

    // Dropping the stream queues an unwatch ahead of this stats request on the same connection.
    drop(wa);
    let stats = a.stats().await.expect("stats");
    assert_eq!(stats.watches.get("svc"), Some(&1));

    // A closed connection takes its watches with it.
    drop(b);
    assert!(server.wait_for_live_connections(1, WAIT).await);
    assert!(server.stats().watches.is_empty());
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let server = server().await;
    let good = conn(&server).await;

    let mut malformed = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    malformed
        .write_all(b"this is not json\n")
        .await
        .expect("write");
    assert!(closed_by_peer(&mut malformed).await);

    let mut no_id = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    no_id
        .write_all(b"{\"op\":\"stats\"}\n")
        .await
        .expect("write");
    assert!(closed_by_peer(&mut no_id).await);

    let mut overlong = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let line = vec![b'x'; 64 * 1024 + 10];
    // The server may close before it has read everything: a failed write is fine.
    let _ = overlong.write_all(&line).await;
    assert!(closed_by_peer(&mut overlong).await);

    assert_eq!(good.echo("still here").await.as_deref(), Ok("still here"));
    assert!(server.wait_for_live_connections(1, WAIT).await);
}

#[tokio::test]
async fn a_line_of_exactly_the_limit_is_served() {
    let server = server().await;
    let client = conn(&server).await;
    let overhead = r#"{"id":1,"op":"echo","payload":""}"#.len();
    let payload = "y".repeat(64 * 1024 - overhead);
    assert_eq!(client.echo(&payload).await.as_deref(), Ok(payload.as_str()));
}

#[tokio::test]
async fn unknown_ops_and_missing_fields_get_an_error_answer() {
    let server = server().await;
    let stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut raw = BufReader::new(stream);

    let answer = raw_exchange(&mut raw, "{\"id\":7,\"op\":\"frobnicate\"}\n").await;
    assert_eq!(answer["id"], 7);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("frobnicate"))
    );

    let answer = raw_exchange(&mut raw, "{\"id\":8,\"op\":\"lookup\"}\n").await;
    assert_eq!(answer["id"], 8);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("service"))
    );

    // Blank lines are ignored and the connection still serves.
    let answer = raw_exchange(
        &mut raw,
        "\n{\"id\":9,\"op\":\"echo\",\"payload\":\"hi\"}\n",
    )
    .await;
    assert_eq!(answer, serde_json::json!({"id": 9, "ok": "hi"}));

    let answer = raw_exchange(&mut raw, "{\"id\":10,\"op\":\"watch\",\"service\":\"s\"}\n").await;
    assert_eq!(answer, serde_json::json!({"id": 10, "ok": null}));
    let mut push = String::new();
    tokio::time::timeout(WAIT, raw.read_line(&mut push))
        .await
        .expect("the current value within the bound")
        .expect("read");
    let push: serde_json::Value = serde_json::from_str(&push).expect("JSON");
    assert_eq!(
        push,
        serde_json::json!({"event": "update", "service": "s", "endpoints": [], "version": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_multiplexed() {
    let server = server().await;
    let client = conn(&server).await;
    let calls = (0..200).map(|i| {
        let client = &client;
        async move { (i, client.echo(&format!("payload-{i}")).await) }
    });
    for (i, answer) in futures::future::join_all(calls).await {
        assert_eq!(answer, Ok(format!("payload-{i}")));
    }
    assert_eq!(server.stats().total_connections, 1);
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let accepted = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(accepted);
    });
    let client = RegistryConn::connect_with_timeout(addr, Duration::from_millis(100))
        .await
        .expect("connect");
    assert_eq!(client.lookup("x").await, Err(RegistryError::Timeout));
    assert!(matches!(
        client.watch("x").await,
        Err(RegistryError::Timeout)
    ));
    silent.abort();
}

#[tokio::test]
async fn shutdown_ends_streams_and_fails_calls() {
    let server = server().await;
    let client = conn(&server).await;
    let mut updates = client.watch("svc").await.expect("watch");
    assert_eq!(next(&mut updates).await, vec![]);
    server.shutdown();
    let end = tokio::time::timeout(WAIT, updates.next()).await;
    assert_eq!(end, Ok(None));
    assert!(client.is_closed());
    assert_eq!(client.lookup("svc").await, Err(RegistryError::Closed));
    // The listener closes asynchronously: a connect may still complete at the TCP level, but
    // nothing is served on it.
    if let Ok(late) = RegistryConn::connect(server.local_addr()).await {
        assert!(late.echo("x").await.is_err());
    }
}

#[tokio::test]
async fn a_watcher_that_never_reads_is_closed() {
    let server = server().await;
    // A small receive buffer, so the server's bounded queue is what fills up.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut slow = socket.connect(server.local_addr()).await.expect("connect");
    slow.write_all(b"{\"id\":1,\"op\":\"watch\",\"service\":\"big\"}\n")
        .await
        .expect("write");
    let watched = async {
        for _ in 0..100 {
            if server.stats().watches.contains_key("big") {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    };
    assert!(watched.await);

    // ~4 KB per update: the socket buffers and the bounded queue fill, and the server closes
    // the connection rather than buffer without limit.
    let endpoints: Vec<Endpoint> = (0..100).map(|i| ep("host.example", i)).collect();
    for _ in 0..5_000 {
        server.set("big", endpoints.clone());
        tokio::task::yield_now().await;
        if server.stats().live_connections == 0 {
            break;
        }
    }
    assert!(server.wait_for_live_connections(0, WAIT).await);
    assert!(server.stats().watches.is_empty());

    let fresh = conn(&server).await;
    assert_eq!(fresh.lookup("big").await.map(|e| e.len()), Ok(100));
}

#[test]
fn registry_errors_cross_a_wire() {
    let errors = [
        RegistryError::Io("reset".into()),
        RegistryError::Timeout,
        RegistryError::Server("no".into()),
        RegistryError::Closed,
        RegistryError::Protocol("bad".into()),
        RegistryError::Cluster {
            kind: "leader_lost".into(),
            message: "the leader was lost".into(),
        },
    ];
    for error in errors {
        let json = serde_json::to_string(&error).expect("serialize");
        let back: RegistryError = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, error);
    }
}

#[test]
fn client_futures_are_send() {
    fn send<T: Send + 'static>(_: &T) {}
    fn send_ref<T: Send>(_: &T) {}
    fn check(client: &'static RegistryConn) {
        send_ref(&client.lookup("x"));
        send_ref(&client.register("x", Endpoint::new("h", 1)));
        send_ref(&client.watch("x"));
        send_ref(&client.stats());
        send_ref(&client.close());
    }
    let _ = check;
    fn stream_is_send_static(stream: WatchStream) {
        send(&stream);
    }
    let _ = stream_is_send_static;
}

/// Reads one stdout line of the child within [`WAIT`].
async fn child_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a line within the bound")
        .expect("read stdout")
        .expect("stdout still open")
}

#[tokio::test]
async fn the_binary_serves_and_takes_admin_commands() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_upstream-registry"))
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn upstream-registry");
    let pid = child.id().expect("a running child has a pid");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let first = child_line(&mut lines).await;
    let addr = first
        .strip_prefix("listening ")
        .expect("`listening <addr>`");
    let client = RegistryConn::connect(addr)
        .await
        .expect("connect to the child");
    let mut updates = client.watch("svc").await.expect("watch");
    assert_eq!(next(&mut updates).await, vec![]);

    stdin
        .write_all(b"set svc 10.0.0.1:80,10.0.0.2:81\n")
        .await
        .expect("write set");
    assert_eq!(child_line(&mut lines).await, "ok");
    assert_eq!(
        next(&mut updates).await,
        vec![ep("10.0.0.1", 80), ep("10.0.0.2", 81)]
    );

    stdin.write_all(b"stats\n").await.expect("write stats");
    let stats: serde_json::Value =
        serde_json::from_str(&child_line(&mut lines).await).expect("stats JSON");
    assert_eq!(stats["live_connections"], 1);
    assert_eq!(stats["watches"]["svc"], 1);

    // Kill exactly this child (SIGKILL to its pid): the client sees its streams end.
    assert_eq!(child.id(), Some(pid));
    child.kill().await.expect("kill the child");
    let end = tokio::time::timeout(WAIT, updates.next()).await;
    assert_eq!(end, Ok(None));
    assert!(client.is_closed());
}

#[tokio::test]
async fn the_binary_exits_when_stdin_closes() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_upstream-registry"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn upstream-registry");
    let stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(
        child_line(&mut lines)
            .await
            .starts_with("listening 127.0.0.1:")
    );
    drop(stdin);
    let status = tokio::time::timeout(WAIT, child.wait()).await;
    match status {
        Ok(Ok(status)) => assert!(status.success()),
        other => {
            let _ = child.kill().await;
            panic!("the child did not exit on its own: {other:?}");
        }
    }
}
