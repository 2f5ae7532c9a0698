//! The cluster-client roles: the leader (owner of the in-memory real client) and a follower (which
//! drives the generated client and measures).

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster_client::{Options, Role, Transport};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::{Bench, BenchClient, CHANNEL, Hub, Real, TOPIC};
use crate::util::{self, FeedLog, Summary, commands, emit, field, now_ns, on_worker, payload};

fn options(port: u16, transport: Transport, role: Role) -> Options {
    Options::new(CHANNEL)
        .port(port)
        .transport(transport)
        .role(role)
}

/// `--role leader --port P [--transport unix]`: leads the channel and serves commands: `stats`, `reset`, `push`.
pub async fn leader(port: u16, transport: Transport) -> ExitCode {
    let hub = Arc::new(Hub::default());
    let shared = Arc::clone(&hub);
    let created = BenchClient::create(options(port, transport, Role::Leader), move || {
        let hub = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(Real(hub)) }
    })
    .await;
    let client = match util::created(created) {
        Ok(client) => client,
        Err(code) => return code,
    };
    util::announce(&client);
    let mut commands = commands();
    while let Some(command) = commands.recv().await {
        let answer = match command["cmd"].as_str() {
            Some("stats") => json!(hub.sink_stats()),
            Some("reset") => {
                hub.reset();
                json!({ "ok": true })
            }
            Some("push") => {
                // On a worker thread unless `--main-thread`: a real client's items come from its
                // own socket, read on a worker.
                let (hub, command) = (Arc::clone(&hub), command.clone());
                on_worker(field(&command, "on_worker", true), async move {
                    push(&hub, &command).await
                })
                .await
            }
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        emit(&answer);
    }
    client.close().await;
    ExitCode::SUCCESS
}

/// Emits `count` items at `rate` per second (warm-up items when `warm`), each stamped as it leaves.
async fn push(hub: &Hub, command: &Value) -> Value {
    let count: u64 = field(command, "count", 1);
    let rate: f64 = field(command, "rate", 1000.0);
    let warm: bool = field(command, "warm", false);
    let pad = payload(field(command, "size", 100));
    let start = tokio::time::Instant::now();
    let start_ns = now_ns();
    let mut reached = 0;
    for i in 0..count {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        reached = hub.emit(if warm { 0 } else { i + 1 }, &pad);
    }
    json!({ "start_ns": start_ns, "end_ns": now_ns(), "subscriptions": reached })
}

/// `--role follower --port P`: follows and serves commands: `seq`, `tput`, `oneway`, `subscribe`,
/// `unsubscribe`, `feed_stats`, `feed_reset`.
pub async fn follower(port: u16, transport: Transport) -> ExitCode {
    let created = BenchClient::create(options(port, transport, Role::Follower), || async {
        Err::<Real, _>("a benchmark follower never leads")
    })
    .await;
    let client = match util::created(created) {
        Ok(client) => client,
        Err(code) => return code,
    };
    util::announce(&client);
    let log = Arc::new(FeedLog::default());
    let mut feed: Option<tokio::task::JoinHandle<()>> = None;
    let mut commands = commands();
    while let Some(command) = commands.recv().await {
        let answer = match command["cmd"].as_str() {
            Some("seq") => {
                on_worker(
                    field(&command, "on_worker", true),
                    sequential(client.clone(), command),
                )
                .await
            }
            Some("tput") => {
                on_worker(
                    field(&command, "on_worker", true),
                    concurrent(client.clone(), command, false),
                )
                .await
            }
            Some("oneway") => {
                on_worker(
                    field(&command, "on_worker", true),
                    concurrent(client.clone(), command, true),
                )
                .await
            }
            Some("subscribe") => {
                if feed.is_none() {
                    feed = Some(tokio::spawn(consume(client.clone(), Arc::clone(&log))));
                }
                json!({ "ok": true })
            }
            Some("unsubscribe") => {
                if let Some(task) = feed.take() {
                    task.abort();
                }
                json!({ "ok": true })
            }
            Some("feed_stats") => log.report(field(&command, "samples", false)),
            Some("feed_reset") => {
                log.reset();
                json!({ "ok": true })
            }
            other => json!({ "error": format!("unknown command {other:?}") }),
        };
        emit(&answer);
    }
    if let Some(task) = feed {
        task.abort();
    }
    client.close().await;
    ExitCode::SUCCESS
}

async fn consume(client: BenchClient, log: Arc<FeedLog>) {
    let mut items = client.feed(TOPIC.to_owned());
    while let Some(item) = items.next().await {
        log.record(&item);
    }
}

/// Sequential echoes for `ms` after `warmup_ms`: the round-trip distribution.
async fn sequential(client: BenchClient, command: Value) -> Value {
    let command = &command;
    let size = field(command, "size", 100);
    let warmup = Duration::from_millis(field(command, "warmup_ms", 200));
    let measure = Duration::from_millis(field(command, "ms", 2000));
    let payload = payload(size);
    let mut errors = 0u64;
    let mut samples = Vec::with_capacity(100_000);
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + measure);
    loop {
        let argument = payload.clone();
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let result = client.echo(argument).await;
        let elapsed = t0.elapsed();
        match result {
            Ok(echoed) if echoed.len() == size => {
                if t0 >= measure_from {
                    samples.push(elapsed.as_nanos() as u64);
                }
            }
            _ => errors += 1,
        }
    }
    let summary = Summary::of(&mut samples);
    json!({ "summary": summary, "errors": errors, "samples": samples })
}

/// `concurrency` tasks calling back to back for `ms` after `warmup_ms`: echo, or oneway `sink`.
async fn concurrent(client: BenchClient, command: Value, oneway: bool) -> Value {
    let command = &command;
    let size = field(command, "size", 100);
    let concurrency = field(command, "concurrency", 64usize);
    let warmup = Duration::from_millis(field(command, "warmup_ms", 200));
    let measure = Duration::from_millis(field(command, "ms", 2000));
    let payload: Arc<str> = payload(size).into();
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (measure_from, end) = (started + warmup, started + warmup + measure);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, payload) = (client.clone(), Arc::clone(&payload));
            let (done, errors) = (Arc::clone(&done), Arc::clone(&errors));
            tokio::spawn(async move {
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let ok = if oneway {
                        client.sink(payload.to_string()).await;
                        true
                    } else {
                        matches!(client.echo(payload.to_string()).await, Ok(e) if e.len() == size)
                    };
                    // Oneway calls all count: the leader's counter is the figure.
                    if oneway || now >= measure_from {
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = if oneway { end - started } else { measure };
    json!({
        "n": done.load(Ordering::Relaxed),
        "errors": errors.load(Ordering::Relaxed),
        "elapsed_ns": elapsed.as_nanos() as u64,
    })
}
