//! The raw-socket side of the fault tests: sockets speaking (or breaking) the wire protocol,
//! hand-made frames, and foreign servers on the election port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cluster_client::Codec;
use cluster_client::protocol::conn::{
    Heartbeat, HeartbeatRes, Invoke, InvokeResult, RegisterChannel, RegisterChannelRes,
    SubscribeResult,
};
use cluster_client::protocol::proof::{self, Nonce, Nonces, Side};
use cluster_client::protocol::{ConnObject, HEADER_LEN, Header, Packet, args::push_arg_with};
use cluster_client::transcode::Transcode;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A 24-byte header with every field given, lengths as signed 32-bit values (so they can lie).
pub fn header(
    version: u8,
    kind: u8,
    id: i64,
    timeout: i32,
    conn_len: i32,
    app_len: i32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.put_u8(version);
    out.put_u8(kind);
    out.put_u16(0);
    out.put_i64(id);
    out.put_i32(timeout);
    out.put_i32(conn_len);
    out.put_i32(app_len);
    out
}

/// A request frame with this connection-object text (valid JSON or not) and application object.
pub fn raw_request(id: i64, conn: &str, app: &[u8]) -> Vec<u8> {
    let mut out = header(1, 0, id, 3000, conn.len() as i32, app.len() as i32);
    out.extend_from_slice(conn.as_bytes());
    out.extend_from_slice(app);
    out
}

/// The encoded frame of a packet.
pub fn frame(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.encode(&mut out).expect("packet encodes");
    out.to_vec()
}

/// One invoke argument, framed, in the default codec.
pub fn push<T: Serialize>(out: &mut BytesMut, value: &T) {
    push_arg_with(out, |out| Codec::default().encode(value, out)).expect("argument encodes");
}

/// `register_channel` for `channel`, with neither fingerprint nor codec (as the original sends it).
pub fn register_packet(id: i64, channel: &str) -> Packet {
    let conn = ConnObject::parse(
        format!(r#"{{"type":"register_channel","channelName":"{channel}"}}"#).as_bytes(),
    )
    .expect("a register_channel object");
    Packet::request(id, 3000, conn, Bytes::new())
}

/// An `invoke` request of `method` with framed arguments.
pub fn invoke_packet(id: i64, timeout: i32, method: &str, argc: u32, app: Bytes) -> Packet {
    let conn = ConnObject::parse(
        format!(r#"{{"type":"invoke","method":"{method}","argLength":{argc},"oneway":false}}"#)
            .as_bytes(),
    )
    .expect("an invoke object");
    Packet::request(id, timeout, conn, app)
}

/// A `subscribe` (or `unSubscribe`) request of the registry's `watch` for `service`, with the key a
/// generated client uses (one argument: its own JSON), so it shares a topic with real followers.
pub fn watch_packet(id: i64, service: &str, subscribe: bool) -> Packet {
    let ty = if subscribe {
        "subscribe"
    } else {
        "unSubscribe"
    };
    let conn = ConnObject::parse(
        format!(
            r#"{{"type":"{ty}","key":"$$inner$$__\"{service}\"","reg":"{service}","method":"watch"}}"#
        )
        .as_bytes(),
    )
    .expect("a subscribe object");
    let mut app = BytesMut::new();
    push(&mut app, &service.to_owned());
    Packet::request(id, 3000, conn, app.freeze())
}

/// How a raw read ended.
#[derive(Debug)]
pub enum Read {
    /// A whole packet.
    Packet(Packet),
    /// The peer closed the connection (EOF or reset).
    Closed,
    /// Nothing within the wait.
    Nothing,
    /// Bytes that do not decode, and why.
    #[allow(dead_code, reason = "read through `Debug`, in the failure messages")]
    Garbage(String),
}

/// A raw TCP connection to a leader's port, driven byte by byte from the test.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

/// The largest frame a raw connection accepts from the leader.
const RAW_MAX_FRAME: u64 = 1 << 20;

/// One whole packet off the front of `buf`, if it holds one.
fn decode(buf: &mut BytesMut) -> Result<Option<Packet>, String> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let header = Header::parse(&buf[..HEADER_LEN]).map_err(|e| e.to_string())?;
    let size = header.frame_len();
    if size > RAW_MAX_FRAME {
        return Err(format!("a {size}-byte frame"));
    }
    if (buf.len() as u64) < size {
        return Ok(None);
    }
    Packet::decode(buf.split_to(size as usize).freeze())
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Raw {
    /// Connects to 127.0.0.1:`port`.
    pub async fn connect(port: u16) -> Raw {
        let stream = tokio::time::timeout(
            crate::support::WAIT,
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .expect("connect within the bound")
        .expect("connect");
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects and registers on `channel`; panics unless the leader accepts.
    pub async fn registered(port: u16, channel: &str) -> Raw {
        Raw::connect(port).await.accepted(channel).await
    }

    /// Registers on `channel`; panics unless the leader accepts.
    pub async fn accepted(mut self, channel: &str) -> Raw {
        let raw = &mut self;
        let answer = raw.register(channel).await;
        assert!(
            matches!(
                answer.conn,
                ConnObject::RegisterChannelRes(RegisterChannelRes {
                    success: Some(true),
                    ..
                })
            ),
            "registration accepted: {answer:?}"
        );
        self
    }

    /// Sends `register_channel` and returns the answer.
    ///
    /// It proves the cluster secret as a member would, with the secret file the test's workers use
    /// for this port: a leader challenges every registration.
    pub async fn register(&mut self, channel: &str) -> Packet {
        let ours = Nonce::fresh().expect("random bytes");
        let mut register = register_packet(1, channel);
        if let ConnObject::RegisterChannel(conn) = &mut register.conn {
            conn.nonce = Some(ours.to_hex());
        }
        self.send(&frame(&register)).await;
        let answer = self.answer_to_register().await;
        let ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: None,
            nonce: Some(theirs),
            proof: Some(_),
            ..
        }) = &answer.conn
        else {
            return answer;
        };
        let port = self.stream.peer_addr().expect("connected").port();
        let path = crate::support::runtime_dir().join(format!("port-{port}.secret"));
        let secret = std::fs::read(&path).expect("the leader's secret file");
        let nonces = Nonces {
            leader: Nonce::from_hex(theirs).expect("a nonce"),
            follower: ours,
        };
        let mut response = register_packet(1, channel);
        if let ConnObject::RegisterChannel(conn) = &mut response.conn {
            conn.proof = Some(proof::prove(&secret, Side::Follower, channel, nonces));
        }
        self.send(&frame(&response)).await;
        self.answer_to_register().await
    }

    async fn answer_to_register(&mut self) -> Packet {
        match self.next(crate::support::WAIT).await {
            Read::Packet(packet) => packet,
            other => panic!("no answer to register_channel: {other:?}"),
        }
    }

    /// Writes bytes; a peer that already closed is not an error here (the reads tell).
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a packet.
    pub async fn send_packet(&mut self, packet: &Packet) {
        self.send(&frame(packet)).await;
    }

    /// The next packet, within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Read {
        let deadline = Instant::now() + wait;
        for _ in 0..100_000 {
            match decode(&mut self.buf) {
                Ok(Some(packet)) => return Read::Packet(packet),
                Ok(None) => {}
                Err(err) => return Read::Garbage(err),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Read::Nothing,
                Ok(Ok(0)) | Ok(Err(_)) => return Read::Closed,
                Ok(Ok(_)) => {}
            }
        }
        Read::Nothing
    }

    /// The next packet that is not a subscription push, within `wait`; pushes are kept aside.
    pub async fn answer(&mut self, wait: Duration, pushes: &mut Vec<Packet>) -> Packet {
        let deadline = Instant::now() + wait;
        loop {
            match self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Read::Packet(packet)
                    if matches!(
                        packet.conn,
                        ConnObject::SubscribeResult(SubscribeResult { .. })
                    ) =>
                {
                    pushes.push(packet)
                }
                Read::Packet(packet) => return packet,
                other => panic!("expected an answer, got {other:?}"),
            }
        }
    }

    /// The first packet matching `pred`, within `wait`: from `kept` or read now; the packets read
    /// that do not match are added to `kept`.
    pub async fn wait_for(
        &mut self,
        wait: Duration,
        kept: &mut Vec<Packet>,
        pred: impl Fn(&Packet) -> bool,
    ) -> Packet {
        if let Some(i) = kept.iter().position(&pred) {
            return kept.remove(i);
        }
        let deadline = Instant::now() + wait;
        loop {
            match self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Read::Packet(packet) if pred(&packet) => return packet,
                Read::Packet(packet) => kept.push(packet),
                other => panic!("expected a matching packet, got {other:?}; kept {kept:?}"),
            }
        }
    }

    /// Reads (and drops) whatever comes until the peer closes the connection; `Some(elapsed)` if it
    /// did within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<Duration> {
        let started = Instant::now();
        let deadline = started + wait;
        let mut scratch = [0u8; 4096];
        for _ in 0..100_000 {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
        None
    }
}

/// What a foreign server on the election port does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// Accepts and never says or closes anything.
    Silent,
    /// Accepts and closes at once.
    Closes,
    /// Accepts and answers like an HTTP server.
    Http,
    /// Speaks the protocol as a leader would: accepts every `register_channel`, answers every
    /// heartbeat, and answers every invoke with success and these bytes as its result.
    Squatter(&'static [u8]),
}

/// Serves one connection of a [`Foreign::Squatter`], until the peer closes it or sends garbage.
async fn squat(mut socket: TcpStream, result: &'static [u8]) {
    let mut buf = BytesMut::new();
    // Bounded: a peer that keeps talking is dropped after this many packets.
    for _ in 0..100_000 {
        let packet = match decode(&mut buf) {
            Ok(Some(packet)) => packet,
            Ok(None) => match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let (conn, app) = match packet.conn {
            ConnObject::RegisterChannel(RegisterChannel { .. }) => (
                ConnObject::RegisterChannelRes(RegisterChannelRes {
                    success: Some(true),
                    epoch: Some(1),
                    push_ack: Some(false),
                    ..RegisterChannelRes::default()
                }),
                Bytes::new(),
            ),
            ConnObject::Heartbeat(Heartbeat {}) => {
                (ConnObject::HeartbeatRes(HeartbeatRes {}), Bytes::new())
            }
            ConnObject::Invoke(Invoke { .. }) => (
                ConnObject::InvokeResult(InvokeResult {
                    success: true,
                    fault: None,
                }),
                Bytes::from_static(result),
            ),
            _ => continue,
        };
        let answer = Packet::response(packet.id, packet.timeout, conn, app);
        if socket.write_all(&frame(&answer)).await.is_err() {
            return;
        }
    }
}

/// A foreign (non cluster-client) server holding a port; counts the connections it accepted.
pub struct ForeignServer {
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ForeignServer {
    pub async fn start(mode: Foreign) -> ForeignServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            let mut held_tasks = Vec::new();
            // Bounded: a runaway client would stop being served after this many connections.
            for _ in 0..10_000 {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                match mode {
                    Foreign::Silent => held.push(socket),
                    Foreign::Closes => drop(socket),
                    Foreign::Squatter(result) => {
                        held_tasks.push(tokio::spawn(squat(socket, result)));
                    }
                    Foreign::Http => {
                        let _ = socket
                            .write_all(
                                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            )
                            .await;
                        drop(socket);
                    }
                }
            }
        });
        ForeignServer {
            port,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for ForeignServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
