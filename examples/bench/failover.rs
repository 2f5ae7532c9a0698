//! Phases f (failover) and h (late subscriber): the roles they start and what they measure.
//!
//! - f. One leader and four followers, each with four lanes calling `pid()` with a 1 ms pause (the
//!   Node package's own failover workload); `kill -9` of the leader; per rep, when the new leader
//!   served its own first call (elected), when every lane of every survivor was served by it (all
//!   recovered), both from the kill, and how many calls failed. Then the same with
//!   `pid_idempotent()`, whose calls on the wire at the kill go to the new leader.
//! - g. The same with SIGTERM instead of `kill -9`: the member closes its client, and the leader
//!   hands over to a successor.
//! - h. A leader whose topic has a cached item; a new process creates its client, subscribes, and
//!   times its first item from the start of `create()`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster_client::{Options, Role, Transport};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

use crate::api::{Bench, BenchClient, CHANNEL, Hub, Real, TOPIC};
use crate::util::{self, commands, emit, field, now_ns};

/// What one lane saw: calls that succeeded and failed, and when each answering leader first served.
#[derive(Default)]
struct Lane {
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// The first success answered by each leader pid, in ns since the epoch.
    first_by_pid: BTreeMap<u32, u64>,
}

fn options(port: u16, transport: Transport) -> Options {
    Options::new(CHANNEL)
        .port(port)
        .transport(transport)
        .role(Role::Auto)
}

/// `--role member --port P`: leads or follows (whichever the election gives), and serves
/// `lanes` (start calling) and `report` (stop, and say what each lane saw). On SIGTERM it closes
/// its client (a leader hands over) and exits.
pub async fn member(port: u16, transport: Transport) -> ExitCode {
    let hub = Arc::new(Hub::default());
    let created = BenchClient::create(options(port, transport), move || {
        let hub = Arc::clone(&hub);
        async move { Ok::<_, Infallible>(Real(hub)) }
    })
    .await;
    let client = match util::created(created) {
        Ok(client) => client,
        Err(code) => return code,
    };
    util::announce(&client);
    let stop = Arc::new(AtomicBool::new(false));
    let mut lanes = Vec::new();
    let mut commands = commands();
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        emit(&json!({ "error": "no SIGTERM handler" }));
        return ExitCode::FAILURE;
    };
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            _ = terminate.recv() => None,
        };
        let Some(command) = command else { break };
        let answer = match command["cmd"].as_str() {
            Some("lanes") => {
                let pause = Duration::from_millis(field(&command, "pause_ms", 1));
                let idempotent = field(&command, "idempotent", false);
                for _ in 0..field(&command, "lanes", 4usize) {
                    let (client, stop) = (client.clone(), Arc::clone(&stop));
                    lanes.push(tokio::spawn(lane(client, stop, pause, idempotent)));
                }
                json!({ "ok": true })
            }
            Some("report") => {
                stop.store(true, Ordering::Relaxed);
                let mut report = Vec::new();
                for task in lanes.drain(..) {
                    if let Ok(lane) = task.await {
                        report.push(json!({
                            "ok": lane.ok,
                            "errors": lane.errors,
                            "first_by_pid": lane.first_by_pid,
                        }));
                    }
                }
                json!({ "pid": std::process::id(), "lanes": report })
            }
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        emit(&answer);
    }
    client.close().await;
    ExitCode::SUCCESS
}

/// Calls `pid()` (or `pid_idempotent()`) with `pause` after each call, until `stop`.
async fn lane(
    client: BenchClient,
    stop: Arc<AtomicBool>,
    pause: Duration,
    idempotent: bool,
) -> Lane {
    let mut lane = Lane::default();
    while !stop.load(Ordering::Relaxed) {
        let answer = if idempotent {
            client.pid_idempotent().await
        } else {
            client.pid().await
        };
        match answer {
            Ok(pid) => {
                lane.ok += 1;
                lane.first_by_pid.entry(pid).or_insert_with(now_ns);
            }
            Err(err) => {
                let kind = err.0.split(':').next().unwrap_or("other").to_owned();
                *lane.errors.entry(kind).or_default() += 1;
            }
        }
        tokio::time::sleep(pause).await;
    }
    lane
}

/// `--role late --port P`: times `create()` and the first item of the `feed` subscription, says so
/// in its ready line, then waits for its stdin to close.
pub async fn late(port: u16, transport: Transport) -> ExitCode {
    let started = Instant::now();
    let created = BenchClient::create(options(port, transport).role(Role::Follower), || async {
        Err::<Real, _>("a late subscriber never leads")
    })
    .await;
    let client = match util::created(created) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let created_ns = started.elapsed().as_nanos() as u64;
    let mut feed = client.feed(TOPIC.to_owned());
    let first = tokio::time::timeout(Duration::from_secs(5), feed.next()).await;
    let first_ns = started.elapsed().as_nanos() as u64;
    match first {
        Ok(Some(_)) => {
            emit(&json!({ "ready": true, "create_ns": created_ns, "first_item_ns": first_ns }))
        }
        other => emit(&json!({ "error": format!("no first item: {other:?}") })),
    }
    let mut commands = commands();
    while commands.recv().await.is_some() {}
    drop(feed);
    client.close().await;
    ExitCode::SUCCESS
}

/// The per-rep figures of phase f, from the kill time and the survivors' reports.
pub struct Rep {
    pub elected_ns: u64,
    pub recovered_ns: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
}

/// Reads one rep: `old` is the killed leader's pid, `kill_ns` when it was killed.
pub fn read_rep(reports: &[Value], old: u32, kill_ns: u64) -> Option<Rep> {
    let mut errors = BTreeMap::<String, u64>::new();
    let (mut elected, mut recovered) = (None, 0u64);
    for report in reports {
        let me = report["pid"].as_u64()? as u32;
        for lane in report["lanes"].as_array()? {
            for (kind, n) in lane["errors"].as_object()? {
                *errors.entry(kind.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
            // The first success from a leader other than the killed one.
            let first_new = lane["first_by_pid"]
                .as_object()?
                .iter()
                .filter(|(pid, _)| pid.parse::<u32>().ok() != Some(old))
                .filter_map(|(pid, ns)| Some((pid.parse::<u32>().ok()?, ns.as_u64()?)))
                .min_by_key(|&(_, ns)| ns)?;
            let after = first_new.1.saturating_sub(kill_ns);
            recovered = recovered.max(after);
            if first_new.0 == me {
                elected = Some(elected.map_or(after, |e: u64| e.min(after)));
            }
        }
    }
    Some(Rep {
        elected_ns: elected?,
        recovered_ns: recovered,
        failed: errors.values().sum(),
        errors,
    })
}
