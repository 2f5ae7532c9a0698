//! The raw baselines: plain tokio TCP moving the same frame bytes, with nothing of cluster-client but
//! its frame builder (so the sizes match).
//!
//! - `echo-server` echoes each frame: reads its header, reads its body, writes it back (mode `E`; reads
//!   are buffered); or echoes every whole frame of one read in one write (mode `C`, coalescing); or
//!   counts frames and answers with the count when the client stops sending (mode `S`, oneway).
//! - `echo-client` sends the invoke frame sequentially, or with C in flight (plain: one write per
//!   frame; coalescing: the frames due after one read in one write).
//! - `push-server` writes each item frame to its first N clients in turn, from one task.
//! - `push-client` reads item frames and logs their delivery latency.

use std::future::Future;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use cluster_client::protocol::HEADER_LEN;
use cluster_client::transcode::Transcode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::api::Item;
use crate::util::{
    FeedLog, Summary, codec, commands, emit, field, frame_len, invoke_frame, now_ns, on_worker,
    payload, push_frame,
};

/// Echo mode: every frame comes back, read and written one at a time.
const MODE_ECHO: u8 = b'E';
/// Echo mode with a timer armed in the server process while the connection lasts, as a client with
/// deadlines or heartbeats always has: the runtime then parks with a timeout.
const MODE_ECHO_TIMED: u8 = b'T';
/// Coalescing echo mode: every whole frame of one read comes back in one write.
const MODE_ECHO_COALESCED: u8 = b'C';
/// Sink mode: frames are counted; the count comes back when the client shuts its side.
const MODE_SINK: u8 = b'S';

async fn listen() -> std::io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

async fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Waits until stdin closes (the coordinator is done with this process).
async fn until_stdin_closes() {
    let mut commands = commands();
    while commands.recv().await.is_some() {}
}

/// `--role echo-server`.
pub async fn echo_server() -> ExitCode {
    let (listener, port) = match listen().await {
        Ok(bound) => bound,
        Err(err) => {
            emit(&json!({ "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(serve_echo(socket));
        }
    });
    emit(&json!({ "ready": true, "pid": std::process::id(), "port": port }));
    until_stdin_closes().await;
    ExitCode::SUCCESS
}

async fn serve_echo(mut socket: TcpStream) -> std::io::Result<()> {
    let mode = socket.read_u8().await?;
    if mode == MODE_ECHO {
        return echo_frames(socket).await;
    }
    if mode == MODE_ECHO_TIMED {
        return with_timer(echo_frames(socket)).await;
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let (mut count, mut first_ns, mut last_ns) = (0u64, 0u64, 0u64);
    loop {
        if socket.read_buf(&mut buf).await? == 0 {
            break;
        }
        // Every whole frame read so far, found by reading each header.
        let mut whole = 0;
        let mut frames = 0;
        while let Some(len) = frame_len(&buf[whole..]) {
            if buf.len() - whole < len {
                break;
            }
            whole += len;
            frames += 1;
        }
        if mode == MODE_ECHO_COALESCED {
            socket.write_all(&buf[..whole]).await?;
        } else if frames > 0 {
            let now = now_ns();
            if count == 0 {
                first_ns = now;
            }
            count += frames;
            last_ns = now;
        }
        buf.advance(whole);
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
    }
    if mode == MODE_SINK {
        for value in [count, first_ns, last_ns] {
            socket.write_u64(value).await?;
        }
    }
    Ok(())
}

/// The plain echo: read a header, read the body, write the frame back; reads are buffered.
async fn echo_frames(mut socket: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = socket.split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let mut frame = vec![0u8; HEADER_LEN];
    loop {
        frame.resize(HEADER_LEN, 0);
        match read.read_exact(&mut frame).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        }
        let len = frame_len(&frame).ok_or_else(|| std::io::Error::other("bad header"))?;
        frame.resize(len, 0);
        read.read_exact(&mut frame[HEADER_LEN..]).await?;
        write.write_all(&frame).await?;
    }
}

/// `--role echo-client --port P`: serves commands `seq`, `tput` and `oneway`.
pub async fn echo_client(port: u16) -> ExitCode {
    emit(&json!({ "ready": true, "pid": std::process::id() }));
    let mut commands = commands();
    while let Some(command) = commands.recv().await {
        let result = match command["cmd"].as_str() {
            Some("seq") => {
                on_worker(
                    field(&command, "on_worker", true),
                    raw_sequential(port, command),
                )
                .await
            }
            Some("tput") => {
                on_worker(
                    field(&command, "on_worker", true),
                    raw_pipelined(port, command),
                )
                .await
            }
            Some("oneway") => {
                on_worker(
                    field(&command, "on_worker", true),
                    raw_oneway(port, command),
                )
                .await
            }
            other => Ok(json!({ "error": format!("unknown command {other:?}") })),
        };
        emit(&result.unwrap_or_else(|err| json!({ "error": err.to_string() })));
    }
    ExitCode::SUCCESS
}

fn durations(command: &Value) -> (Duration, Duration) {
    (
        Duration::from_millis(field(command, "warmup_ms", 200)),
        Duration::from_millis(field(command, "ms", 2000)),
    )
}

/// Runs `work` with a far-off timer armed beside it, in the same runtime.
async fn with_timer<T>(work: impl Future<Output = T>) -> T {
    const FAR: Duration = Duration::from_secs(3600);
    let timer = tokio::time::sleep(FAR);
    tokio::pin!(work, timer);
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = &mut timer => timer.as_mut().reset(tokio::time::Instant::now() + FAR),
        }
    }
}

/// One frame out, its echo back, and again: the raw round-trip distribution. With `timer`, both
/// processes keep a timer armed meanwhile.
async fn raw_sequential(port: u16, command: Value) -> std::io::Result<Value> {
    if field(&command, "timer", false) {
        return with_timer(sequential_frames(port, command, MODE_ECHO_TIMED)).await;
    }
    sequential_frames(port, command, MODE_ECHO).await
}

async fn sequential_frames(port: u16, command: Value, mode: u8) -> std::io::Result<Value> {
    let command = &command;
    let frame = invoke_frame("echo", &payload(field(command, "size", 100)), false);
    let (warmup, measure) = durations(command);
    let mut socket = connect(port).await?;
    socket.write_u8(mode).await?;
    let mut back = vec![0u8; frame.len()];
    let mut samples = Vec::with_capacity(100_000);
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + measure);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        socket.write_all(&frame).await?;
        socket.read_exact(&mut back).await?;
        if t0 >= measure_from {
            samples.push(t0.elapsed().as_nanos() as u64);
        }
    }
    let summary = Summary::of(&mut samples);
    Ok(json!({ "summary": summary, "errors": 0, "samples": samples }))
}

/// C frames in flight on one connection: every echo that comes back is replaced by a new frame.
/// Plain: each frame read and written on its own (reads buffered). With `coalesce`: the replacements
/// of one read go out in one write, and the server echoes likewise.
async fn raw_pipelined(port: u16, command: Value) -> std::io::Result<Value> {
    let command = &command;
    let frame = invoke_frame("echo", &payload(field(command, "size", 100)), false);
    let concurrency = field(command, "concurrency", 64usize).max(1);
    let (warmup, measure) = durations(command);
    if !field(command, "coalesce", false) {
        return pipelined_frames(port, &frame, concurrency, warmup, measure).await;
    }
    let batch: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * concurrency)
        .collect();
    let mut socket = connect(port).await?;
    socket.write_u8(MODE_ECHO_COALESCED).await?;
    socket.write_all(&batch).await?;
    let mut buf = BytesMut::with_capacity(batch.len() * 2);
    let mut done = 0u64;
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + measure);
    loop {
        if socket.read_buf(&mut buf).await? == 0 {
            break;
        }
        let back = buf.len() / frame.len();
        buf.advance(back * frame.len());
        let now = Instant::now();
        if now >= measure_from {
            done += back as u64;
        }
        if now >= end {
            break;
        }
        socket.write_all(&batch[..back * frame.len()]).await?;
        buf.reserve(batch.len());
    }
    Ok(json!({ "n": done, "errors": 0, "elapsed_ns": measure.as_nanos() as u64 }))
}

async fn pipelined_frames(
    port: u16,
    frame: &[u8],
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> std::io::Result<Value> {
    let mut socket = connect(port).await?;
    socket.write_u8(MODE_ECHO).await?;
    let (read, mut write) = socket.split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    for _ in 0..concurrency {
        write.write_all(frame).await?;
    }
    let mut back = vec![0u8; frame.len()];
    let mut done = 0u64;
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + measure);
    loop {
        read.read_exact(&mut back).await?;
        let now = Instant::now();
        if now >= measure_from {
            done += 1;
        }
        if now >= end {
            break;
        }
        write.write_all(frame).await?;
    }
    Ok(json!({ "n": done, "errors": 0, "elapsed_ns": measure.as_nanos() as u64 }))
}

/// The oneway frame written back to back, C frames a write, for `warmup_ms + ms`; the server's count.
async fn raw_oneway(port: u16, command: Value) -> std::io::Result<Value> {
    let command = &command;
    let frame = invoke_frame("sink", &payload(field(command, "size", 100)), true);
    let concurrency = field(command, "concurrency", 64usize).max(1);
    let (warmup, measure) = durations(command);
    // Plain: one write per frame; with `coalesce`: C frames per write.
    let per_write = if field(command, "coalesce", false) {
        concurrency
    } else {
        1
    };
    let batch: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * per_write)
        .collect();
    let mut socket = connect(port).await?;
    socket.write_u8(MODE_SINK).await?;
    let mut sent = 0u64;
    let end = Instant::now() + warmup + measure;
    while Instant::now() < end {
        for _ in 0..concurrency / per_write {
            socket.write_all(&batch).await?;
        }
        sent += (concurrency / per_write * per_write) as u64;
    }
    socket.shutdown().await?;
    let count = socket.read_u64().await?;
    let first_ns = socket.read_u64().await?;
    let last_ns = socket.read_u64().await?;
    Ok(json!({ "n": sent, "count": count, "first_ns": first_ns, "last_ns": last_ns }))
}

/// `--role push-server`: accepts push clients; serves commands `clients` and `push`.
pub async fn push_server() -> ExitCode {
    let (listener, port) = match listen().await {
        Ok(bound) => bound,
        Err(err) => {
            emit(&json!({ "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    let clients: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let accepted = Arc::clone(&clients);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            accepted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(socket);
        }
    });
    emit(&json!({ "ready": true, "pid": std::process::id(), "port": port }));
    let mut commands = commands();
    let mut push_id = 0i64;
    while let Some(command) = commands.recv().await {
        let answer = match command["cmd"].as_str() {
            Some("clients") => {
                json!({ "clients": clients.lock().unwrap_or_else(PoisonError::into_inner).len() })
            }
            Some("push") => {
                let mut sockets =
                    std::mem::take(&mut *clients.lock().unwrap_or_else(PoisonError::into_inner));
                // On a worker thread unless `--main-thread`, as the leader's upstream client emits.
                let (answer, sockets, last_id) = on_worker(field(&command, "on_worker", true), {
                    let command = command.clone();
                    async move {
                        let answer = raw_push(&mut sockets, &command, &mut push_id).await;
                        (answer, sockets, push_id)
                    }
                })
                .await;
                push_id = last_id;
                clients
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .splice(0..0, sockets);
                answer
            }
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        emit(&answer);
    }
    ExitCode::SUCCESS
}

/// Emits `count` items at `rate` per second to the first `clients` sockets: each item stamped,
/// encoded into its frame once, then written to each socket in turn.
async fn raw_push(sockets: &mut [TcpStream], command: &Value, push_id: &mut i64) -> Value {
    let count: u64 = field(command, "count", 1);
    let rate: f64 = field(command, "rate", 1000.0);
    let warm: bool = field(command, "warm", false);
    let n = field(command, "clients", sockets.len()).min(sockets.len());
    let pad = payload(field(command, "size", 100));
    let start = tokio::time::Instant::now();
    let start_ns = now_ns();
    let mut failed = 0;
    for i in 0..count {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let item = Item {
            seq: if warm { 0 } else { i + 1 },
            sent_ns: now_ns(),
            pad: pad.clone(),
        };
        *push_id += 1;
        let frame = push_frame(*push_id, &item);
        for socket in &mut sockets[..n] {
            if socket.write_all(&frame).await.is_err() {
                failed += 1;
            }
        }
    }
    json!({ "start_ns": start_ns, "end_ns": now_ns(), "subscriptions": n, "failed": failed })
}

/// `--role push-client --port P`: logs every item it reads; serves `feed_stats` and `feed_reset`.
pub async fn push_client(port: u16) -> ExitCode {
    let socket = match connect(port).await {
        Ok(socket) => socket,
        Err(err) => {
            emit(&json!({ "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    let log = Arc::new(FeedLog::default());
    tokio::spawn(read_pushes(socket, Arc::clone(&log)));
    emit(&json!({ "ready": true, "pid": std::process::id() }));
    let mut commands = commands();
    while let Some(command) = commands.recv().await {
        let answer = match command["cmd"].as_str() {
            Some("feed_stats") => log.report(field(&command, "samples", false)),
            Some("feed_reset") => {
                log.reset();
                json!({ "ok": true })
            }
            // Raw clients are always subscribed.
            Some("subscribe" | "unsubscribe") => json!({ "ok": true }),
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        emit(&answer);
    }
    ExitCode::SUCCESS
}

/// Reads whole frames and decodes the item of each from its application object (the connection
/// object is skipped by its length: a raw client has no use for it).
async fn read_pushes(mut socket: TcpStream, log: Arc<FeedLog>) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        while let Some(len) = frame_len(&buf) {
            if buf.len() < len {
                break;
            }
            let conn_len = u32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]) as usize;
            if let Ok(item) = codec().decode::<Item>(&buf[HEADER_LEN + conn_len..len]) {
                log.record(&item);
            }
            buf.advance(len);
        }
    }
}
