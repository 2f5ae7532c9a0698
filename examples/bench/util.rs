//! What every role shares: clocks, statistics, the exact frames of the wire, and the line protocol
//! between the coordinator and its children (one JSON object per line on stdin and stdout).

use std::io::{BufRead, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use cluster_client::Codec;
use cluster_client::protocol::conn::{Invoke, SubscribeResult};
use cluster_client::protocol::{ConnObject, HEADER_LEN, Header, Packet, args};
use cluster_client::transcode::Transcode;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Item, TOPIC};

/// Nanoseconds since the UNIX epoch: one clock for every process of the host, so a receiver can
/// subtract a sender's stamp.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A payload of `size` ASCII bytes.
pub fn payload(size: usize) -> String {
    (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// The codec of every benchmark process (the runtime's default).
pub fn codec() -> Codec {
    Codec::default()
}

/// The request frame a follower sends for `method(payload)`: header, `invoke` connection object and
/// the framed, encoded argument, byte for byte as the runtime builds it.
pub fn invoke_frame(method: &str, payload: &str, oneway: bool) -> Bytes {
    let mut app = BytesMut::new();
    args::push_arg_with(&mut app, |out| codec().encode(payload, out)).expect("encodable");
    let conn = ConnObject::Invoke(Invoke {
        method: method.to_owned(),
        arg_length: 1,
        oneway,
    });
    let mut frame = BytesMut::new();
    Packet::request(1, 3000, conn, app.freeze())
        .encode(&mut frame)
        .expect("encodable");
    frame.freeze()
}

/// The `subscribe_result` frame a leader pushes for `item` on the `feed` subscription.
pub fn push_frame(id: i64, item: &Item) -> Bytes {
    let mut app = BytesMut::new();
    codec().encode(item, &mut app).expect("encodable");
    let conn = ConnObject::SubscribeResult(SubscribeResult {
        key: format!(
            "$$inner$$__{}",
            serde_json::to_string(TOPIC).expect("a string")
        ),
        method: Some("feed".to_owned()),
        end: None,
        request: None,
        typed: false,
    });
    let mut frame = BytesMut::new();
    Packet::request(id, 0, conn, app.freeze())
        .encode(&mut frame)
        .expect("encodable");
    frame.freeze()
}

/// The length of the whole frame at the start of `buf`, once its header is there.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    Header::parse(&buf[..HEADER_LEN])
        .ok()
        .map(|h| h.frame_len() as usize)
}

/// Latency samples in ns, summarised.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub n: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub mean_ns: u64,
    pub max_ns: u64,
}

impl Summary {
    /// Sorts `samples` and summarises them.
    pub fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: usize| samples[(n * q / 100).min(n - 1)];
        Summary {
            n: n as u64,
            p50_ns: at(50),
            p99_ns: at(99),
            mean_ns: (samples.iter().map(|&s| u128::from(s)).sum::<u128>() / n as u128) as u64,
            max_ns: samples[n - 1],
        }
    }
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Commands from the coordinator: one JSON object per stdin line; `None` once stdin closes.
pub fn commands() -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str(&line) {
                Ok(command) => {
                    if tx.send(command).is_err() {
                        break;
                    }
                }
                Err(err) => eprintln!("bench: bad command {line:?}: {err}"),
            }
        }
    });
    rx
}

/// Runs a measurement on a worker thread of the runtime, as an application's request handlers run
/// (`spawn`, the default), or on the thread blocked in `block_on`, as code in `#[tokio::main]` does.
/// The same for cluster-client and the raw baselines.
pub async fn on_worker<T: Send + 'static>(
    spawn: bool,
    measurement: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    if !spawn {
        return measurement.await;
    }
    match tokio::spawn(measurement).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Writes one JSON line to the coordinator.
pub fn emit(line: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// A field of a command, or its default.
pub fn field<T: serde::de::DeserializeOwned>(command: &Value, name: &str, default: T) -> T {
    command
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(default)
}

/// The command line of a child process: `--role R [--port P] [--transport tcp|unix]`.
pub struct ChildArgs {
    pub role: String,
    pub port: Option<u16>,
    pub transport: cluster_client::Transport,
}

impl ChildArgs {
    /// Parses a child's arguments.
    pub fn parse(args: &[String]) -> Result<ChildArgs, lexopt::Error> {
        use lexopt::prelude::*;
        let mut child = ChildArgs {
            role: String::new(),
            port: None,
            transport: cluster_client::Transport::Tcp,
        };
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next()? {
            match arg {
                Long("role") => child.role = parser.value()?.string()?,
                Long("port") => child.port = Some(parser.value()?.parse()?),
                Long("transport") => {
                    child.transport = match parser.value()?.string()?.as_str() {
                        "unix" => cluster_client::Transport::Unix,
                        "tcp" => cluster_client::Transport::Tcp,
                        other => return Err(format!("unknown transport {other}").into()),
                    }
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(child)
    }
}

/// What a subscriber saw of a feed: delivery latencies of measured items and when they arrived.
#[derive(Default)]
pub struct FeedLog(std::sync::Mutex<FeedState>);

#[derive(Default)]
struct FeedState {
    warm: bool,
    latencies: Vec<u64>,
    first_recv_ns: u64,
    last_recv_ns: u64,
}

impl FeedLog {
    fn state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one received item (a warm-up item only marks the feed as flowing).
    pub fn record(&self, item: &Item) {
        let now = now_ns();
        let mut state = self.state();
        if item.seq == 0 {
            state.warm = true;
            return;
        }
        if state.latencies.is_empty() {
            state.first_recv_ns = now;
        }
        state.last_recv_ns = now;
        state.latencies.push(now.saturating_sub(item.sent_ns));
    }

    /// Forgets everything seen so far.
    pub fn reset(&self) {
        *self.state() = FeedState::default();
    }

    /// The counts, and the latency samples in ns when `samples`.
    pub fn report(&self, samples: bool) -> Value {
        let state = self.state();
        let mut report = serde_json::json!({
            "warm": state.warm,
            "count": state.latencies.len(),
            "first_recv_ns": state.first_recv_ns,
            "last_recv_ns": state.last_recv_ns,
        });
        if samples {
            report["samples"] = serde_json::json!(state.latencies);
        }
        report
    }
}

/// The client `create()` gave, or, after printing its error as the process's one line, the exit
/// code to end with.
pub fn created(
    result: Result<crate::api::BenchClient, cluster_client::Error>,
) -> Result<crate::api::BenchClient, std::process::ExitCode> {
    result.map_err(|err| {
        emit(&serde_json::json!({ "error": err.to_string() }));
        std::process::ExitCode::FAILURE
    })
}

/// Prints the ready line of a process whose client is `client`.
pub fn announce(client: &crate::api::BenchClient) {
    emit(&serde_json::json!({
        "ready": true,
        "pid": std::process::id(),
        "leader": client.is_leader(),
    }));
}
