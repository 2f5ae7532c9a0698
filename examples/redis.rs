//! A real upstream: N worker processes share one Redis connection and one pub/sub subscription.
//!
//! ```text
//! cargo run --example redis                         # 4 workers, a redis-server of its own
//! cargo run --example redis -- --workers 6 --redis redis://127.0.0.1:6379/
//! ```
//!
//! Without `--redis` it starts `redis-server` (from `PATH`) on a free port and stops it at the
//! end. It spawns the workers (this same binary with `--worker`); each creates the generated
//! `SharedRedisClient` (with `create_with`, whose factory gets the leader's `Term`), whose real
//! client, built only in the leader, is one Redis connection that reconnects by itself and, per
//! watched channel, one pub/sub connection. Each worker `watch`es a channel (an `async`
//! subscribe that returns once Redis confirmed the `SUBSCRIBE`) and `join`s (a publish: `SADD`).
//! Then it checks aloud:
//! 1. Redis's `CLIENT LIST` shows the leader's two connections, and none of the other workers;
//! 2. one `PUBLISH` reaches every worker (Redis counts one receiver: the leader);
//! 3. the workers' `INCR`s add up exactly;
//! 4. after `kill -9` of the leader, a survivor leads and reconnects, the counter stays exact,
//!    a `PUBLISH` reaches every survivor, and `CLIENT LIST` shows the new leader's connections;
//! 5. with its own server, a `kill -9` of Redis and a new, empty server on the same port: during
//!    the outage a `watch` fails with the method's own error (`RedisFault::Redis`); after it, the
//!    leader alone subscribes again (Redis counts one `SUBSCRIBE`), sends every worker's `join`
//!    again (it tells the cluster with `Term::upstream_restored` when Redis's `run_id` changes),
//!    no worker's stream ended, and the `INCR`s count again.
//!
//! It exits 0 only when every check held.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use cluster_client::{ErrorKind, Options, Subscription, Term, cluster_client};
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

/// Redis, shared by the processes of one host.
#[cluster_client(name = "redis")]
pub trait SharedRedis {
    /// `GET key`.
    async fn get(&self, key: String) -> Result<Option<String>, RedisFault>;

    /// `SET key value`.
    async fn set(&self, key: String, value: String) -> Result<(), RedisFault>;

    /// `INCRBY key by`: the new value.
    async fn incr(&self, key: String, by: i64) -> Result<i64, RedisFault>;

    /// The messages of a pub/sub channel, from one `SUBSCRIBE` in the leader. Resolves once Redis
    /// has confirmed the `SUBSCRIBE`, or fails with Redis's error. When the pub/sub connection
    /// breaks (Redis restarted), the leader subscribes again with backoff, once for every
    /// process, and the streams go on.
    #[subscribe(resubscribe)]
    async fn watch(&self, channel: String) -> Result<Subscription<String>, RedisFault>;

    /// `SADD members member`: this process announces itself. Remembered, and done again by the
    /// leader when Redis comes back empty after a restart.
    #[publish]
    async fn join(&self, member: String);

    /// Nothing to close: the connections close with the real client.
    #[close]
    async fn close(&self);
}

/// Why a call failed: Redis's error, or the cluster's (no leader, leader lost, timeout…).
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum RedisFault {
    /// Redis refused or failed the command.
    #[error("redis: {0}")]
    Redis(String),
    /// The call did not reach Redis, or its answer did not come back; `kind` tells which (a
    /// `leader_lost` or `timeout` call may have run).
    #[error("cluster ({kind}): {message}")]
    Cluster {
        /// What kind of transport failure.
        kind: ErrorKind,
        /// What happened.
        message: String,
    },
}

impl From<redis::RedisError> for RedisFault {
    fn from(err: redis::RedisError) -> Self {
        RedisFault::Redis(err.to_string())
    }
}

impl From<cluster_client::Error> for RedisFault {
    fn from(err: cluster_client::Error) -> Self {
        RedisFault::Cluster {
            kind: err.kind(),
            message: err.to_string(),
        }
    }
}

/// The real client: one Redis connection that reconnects by itself (named `member-<pid>` in
/// `CLIENT LIST`), and a pub/sub connection per watched channel.
struct RealRedis {
    client: redis::Client,
    conn: ConnectionManager,
}

/// The set `join` adds to.
const MEMBERS: &str = "cluster-client:example:members";

impl RealRedis {
    /// Connects, and watches the server for the leader's term: when Redis comes back as a new
    /// server (its `run_id` changed: restarted, and empty without persistence), it names the
    /// connection again and tells the cluster, which sends every remembered `join` again.
    async fn connect(url: &str, term: Term) -> Result<Self, RedisFault> {
        let client = redis::Client::open(url)?;
        let mut conn = ConnectionManager::new(client.clone()).await?;
        name_connection(&mut conn).await?;
        let mut run_id = server_run_id(&mut conn).await?;
        let mut watched = conn.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = term.over() => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                let Ok(now) = server_run_id(&mut watched).await else {
                    continue;
                };
                if now != run_id && name_connection(&mut watched).await.is_ok() {
                    tracing::info!(%run_id, %now, "redis came back as a new server");
                    run_id = now;
                    term.upstream_restored();
                }
            }
        });
        Ok(RealRedis { client, conn })
    }
}

/// `CLIENT SETNAME member-<pid>`.
async fn name_connection(conn: &mut ConnectionManager) -> Result<(), redis::RedisError> {
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(format!("member-{}", std::process::id()))
        .query_async::<()>(conn)
        .await
}

/// The server's `run_id`, new at every start.
async fn server_run_id(conn: &mut ConnectionManager) -> Result<String, redis::RedisError> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .unwrap_or_default()
        .to_owned())
}

impl SharedRedis for RealRedis {
    async fn get(&self, key: String) -> Result<Option<String>, RedisFault> {
        Ok(self.conn.clone().get(key).await?)
    }

    async fn set(&self, key: String, value: String) -> Result<(), RedisFault> {
        Ok(self.conn.clone().set(key, value).await?)
    }

    async fn incr(&self, key: String, by: i64) -> Result<i64, RedisFault> {
        Ok(self.conn.clone().incr(key, by).await?)
    }

    async fn watch(&self, channel: String) -> Result<Subscription<String>, RedisFault> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        // The messages end only when the connection does: that is a failure, for the leader to
        // subscribe again.
        let messages = pubsub
            .into_on_message()
            .filter_map(|msg| async move { msg.get_payload::<String>().ok().map(Ok) })
            .chain(futures::stream::once(async move {
                Err(RedisFault::Redis(format!(
                    "the pub/sub connection of {channel} closed"
                )))
            }));
        Ok(Subscription::from_try_stream(messages))
    }

    async fn join(&self, member: String) {
        let added: Result<i64, _> = self.conn.clone().sadd(MEMBERS, &member).await;
        if let Err(err) = added {
            tracing::warn!(%member, error = %err, "SADD failed");
        }
    }

    async fn close(&self) {}
}

/// How long any one check may take.
const STEP: Duration = Duration::from_secs(20);

/// The counter the workers increment.
const COUNTER: &str = "cluster-client:example:counter";

/// The pub/sub channel the workers watch.
const NEWS: &str = "cluster-client:example:news";

/// A channel first watched while Redis is down.
const OTHER: &str = "cluster-client:example:other";

#[tokio::main]
async fn main() -> ExitCode {
    cluster_client_workspace::log_to_stderr();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker(&args[1..]).await;
    }
    let (mut workers, mut url) = (4usize, None);
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        use lexopt::prelude::*;
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(err) => return usage(&err.to_string()),
        };
        let parsed = match arg {
            Long("workers") => parser
                .value()
                .and_then(|v| v.parse::<usize>())
                .map(|n| workers = n.max(2)),
            Long("redis") => parser
                .value()
                .and_then(|v| v.string())
                .map(|v| url = Some(v)),
            other => return usage(&other.unexpected().to_string()),
        };
        if let Err(err) = parsed {
            return usage(&err.to_string());
        }
    }
    let mut server = None;
    let url = match url {
        Some(url) => url,
        None => match RedisServer::start().await {
            Ok(started) => {
                let url = started.url.clone();
                server = Some(started);
                url
            }
            Err(err) => {
                println!(
                    "FAILED: cannot start redis-server: {err} (install it, or pass --redis URL)"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let outcome = coordinate(workers, &url, server.as_mut()).await;
    if let Some(mut server) = server {
        server.stop().await;
    }
    match outcome {
        Ok(()) => {
            println!("\nevery check held");
            ExitCode::SUCCESS
        }
        Err(failed) => {
            println!("\nFAILED: {failed}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("redis: {message}\nusage: redis [--workers N] [--redis URL]");
    ExitCode::from(2)
}

// ---------------------------------------------------------------------------------------------
// The worker: one process of the service.
// ---------------------------------------------------------------------------------------------

/// `--worker PORT URL`: joins the cluster, watches `NEWS`, then serves commands from stdin
/// (`{"incr": n}`, `{"status": true}`) until stdin closes.
async fn worker(args: &[String]) -> ExitCode {
    let (Some(Ok(port)), Some(url)) = (args.first().map(|p| p.parse::<u16>()), args.get(1)) else {
        eprintln!("usage: redis --worker PORT URL");
        return ExitCode::from(2);
    };
    let url = url.clone();
    let options = Options::default()
        .port(port)
        .heartbeat_interval(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(5));
    let created = SharedRedisClient::create_with(options, move |term| {
        let url = url.clone();
        async move { RealRedis::connect(&url, term).await }
    })
    .await;
    let client = match created {
        Ok(client) => client,
        Err(err) => {
            emit(json!({ "event": "failed", "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    // Live upstream once it returns: from here on no message is missed.
    let mut news = match client.watch(NEWS.to_owned()).await {
        Ok(news) => news,
        Err(err) => {
            emit(json!({ "event": "failed", "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    let me = format!("worker-{}", std::process::id());
    client.join(me).await;
    emit(json!({ "event": "ready", "leader": client.is_leader(), "pid": std::process::id() }));
    tokio::spawn(async move {
        while let Some(message) = news.next().await {
            emit(json!({ "event": "news", "message": message }));
        }
        let reason = news.error::<RedisFault>().map(|err| err.to_string());
        emit(json!({ "event": "news_ended", "reason": reason }));
    });
    let mut roles = client.roles();
    tokio::spawn(async move {
        while roles.changed().await.is_ok() {
            let now = *roles.borrow_and_update();
            emit(json!({ "event": "role", "role": now.role, "leader_pid": now.leader.pid }));
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(command) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(count) = command["incr"].as_u64() {
            let mut failed = BTreeMap::<String, u64>::new();
            for _ in 0..count {
                // By kind: a `leader_lost` or `timeout` INCR may have counted.
                if let Err(err) = client.incr(COUNTER.to_owned(), 1).await {
                    let kind = match err {
                        RedisFault::Cluster { kind, .. } => kind.to_string(),
                        RedisFault::Redis(_) => "redis".to_owned(),
                    };
                    *failed.entry(kind).or_default() += 1;
                }
            }
            emit(json!({ "event": "incremented", "count": count, "failed": failed }));
        } else if let Some(channel) = command["watch"].as_str() {
            // The method's own error when the upstream SUBSCRIBE fails.
            let outcome = match client.watch(channel.to_owned()).await {
                Ok(_) => json!({ "event": "watched", "ok": true }),
                Err(RedisFault::Redis(message)) => {
                    json!({ "event": "watched", "ok": false, "redis": message })
                }
                Err(err @ RedisFault::Cluster { .. }) => {
                    json!({ "event": "watched", "ok": false, "cluster": err.to_string() })
                }
            };
            emit(outcome);
        } else if command["status"].as_bool() == Some(true) {
            emit(json!({ "event": "status", "leader": client.is_leader() }));
        }
    }
    client.close().await;
    ExitCode::SUCCESS
}

/// Prints one JSON event line.
fn emit(event: Value) {
    println!("{event}");
}

// ---------------------------------------------------------------------------------------------
// The coordinator: starts the workers and checks what Redis sees.
// ---------------------------------------------------------------------------------------------

/// A `redis-server` of this run, on a free port, without persistence.
struct RedisServer {
    child: Child,
    port: u16,
    url: String,
}

impl RedisServer {
    async fn start() -> Result<RedisServer, String> {
        Self::start_on(cluster_client_workspace::free_port()).await
    }

    /// Kills this run's server (kill -9, by its pid) and starts a new one on the same port,
    /// empty, once `meanwhile` has run against no server.
    async fn restart<F: std::future::Future<Output = Result<(), String>>>(
        &mut self,
        meanwhile: F,
    ) -> Result<(), String> {
        self.stop().await;
        meanwhile.await?;
        *self = Self::start_on(self.port).await?;
        Ok(())
    }

    async fn start_on(port: u16) -> Result<RedisServer, String> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| err.to_string())?;
        let url = format!("redis://127.0.0.1:{port}/");
        let client = redis::Client::open(url.as_str()).map_err(|err| err.to_string())?;
        let deadline = Instant::now() + STEP;
        while client.get_multiplexed_async_connection().await.is_err() {
            if Instant::now() > deadline {
                return Err(format!("nothing answered on port {port}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(RedisServer { child, port, url })
    }

    /// Ends this run's server (by its pid) and reaps it.
    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// One worker process and its event lines.
struct Worker {
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Value>,
    /// The `news_ended` event, if its news stream ended.
    news_ended: Option<Value>,
}

impl Worker {
    fn spawn(port: u16, url: &str) -> Result<Worker, String> {
        let exe = std::env::current_exe().map_err(|err| err.to_string())?;
        let mut child = Command::new(exe)
            .args(["--worker", &port.to_string(), url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| err.to_string())?;
        let pid = child.id().ok_or("a worker without a pid")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Worker {
            pid,
            child,
            stdin,
            events,
            news_ended: None,
        })
    }

    async fn send(&mut self, command: Value) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|err| format!("worker {}: {err}", self.pid))
    }

    /// The next event named `name`, within [`STEP`]; other events are dropped.
    async fn event(&mut self, name: &str) -> Result<Value, String> {
        let deadline = Instant::now() + STEP;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if event["event"] == name => return Ok(event),
                Ok(Some(event)) if event["event"] == "news_ended" => self.news_ended = Some(event),
                Ok(Some(event)) if event["event"] == "failed" => {
                    return Err(format!("worker {} failed: {event}", self.pid));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Err(format!("worker {}: no {name} event", self.pid)),
            }
        }
    }

    /// Everything received so far, without waiting.
    fn drain(&mut self) -> Vec<Value> {
        let events: Vec<Value> = std::iter::from_fn(|| self.events.try_recv().ok()).collect();
        if let Some(ended) = events.iter().find(|e| e["event"] == "news_ended") {
            self.news_ended = Some(ended.clone());
        }
        events
    }

    async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    async fn stop(mut self) {
        self.stdin.take();
        if timeout_at(Instant::now() + STEP, self.child.wait())
            .await
            .is_err()
        {
            self.kill9().await;
        }
    }
}

fn check(ok: bool, what: String) -> Result<(), String> {
    println!("  {} {what}", if ok { "ok  " } else { "FAIL" });
    if ok { Ok(()) } else { Err(what) }
}

async fn coordinate(
    count: usize,
    url: &str,
    server: Option<&mut RedisServer>,
) -> Result<(), String> {
    let port = cluster_client_workspace::free_port();
    let redis = redis::Client::open(url).map_err(|err| err.to_string())?;
    let mut own = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| err.to_string())?;
    let _: () = own
        .del(&[COUNTER, MEMBERS])
        .await
        .map_err(|err| err.to_string())?;
    println!("redis at {url}; {count} workers on cluster port {port}");

    let mut workers = Vec::new();
    for _ in 0..count {
        let mut worker = Worker::spawn(port, url)?;
        let ready = worker.event("ready").await?;
        println!("  worker {} ready, leader: {}", worker.pid, ready["leader"]);
        workers.push(worker);
    }
    let leader = leader_of(&mut workers).await?;
    println!("\n1. Redis sees the leader's connections only");
    client_list(&mut own, workers[leader].pid).await?;

    println!(
        "\n2. one PUBLISH reaches every worker: each `watch().await` returned once it was live"
    );
    publish_once(&mut own, &mut workers, "first").await?;

    let per = 250u64;
    println!("\n3. {count} workers x {per} INCR");
    increment(&mut workers, per).await?;
    let total: i64 = own.get(COUNTER).await.map_err(|err| err.to_string())?;
    check(
        total == (count as u64 * per) as i64,
        format!("the counter is {total}, expected {}", count as u64 * per),
    )?;

    println!("\n4. kill -9 of the leader (pid {})", workers[leader].pid);
    let mut killed = workers.remove(leader);
    killed.kill9().await;
    let next = leader_of(&mut workers).await?;
    check(true, format!("worker {} leads now", workers[next].pid))?;
    client_list(&mut own, workers[next].pid).await?;
    increment(&mut workers, per).await?;
    let after: i64 = own.get(COUNTER).await.map_err(|err| err.to_string())?;
    let expected = total + (workers.len() as u64 * per) as i64;
    check(
        after == expected,
        format!("the counter is {after}, expected {expected}"),
    )?;
    publish_to_all(&mut own, &mut workers, "second").await?;

    match server {
        Some(server) => restart_redis(server, &mut workers, per).await?,
        None => println!("\n5. (Redis restart skipped: the server was given with --redis)"),
    }
    for worker in workers {
        worker.stop().await;
    }
    Ok(())
}

/// The index of the worker that leads, asked of each.
async fn leader_of(workers: &mut [Worker]) -> Result<usize, String> {
    let deadline = Instant::now() + STEP;
    loop {
        let mut leaders = Vec::new();
        for (i, worker) in workers.iter_mut().enumerate() {
            worker.send(json!({ "status": true })).await?;
            if worker.event("status").await?["leader"] == true {
                leaders.push(i);
            }
        }
        if let [one] = leaders[..] {
            return Ok(one);
        }
        if Instant::now() > deadline {
            return Err(format!("{} leaders among the workers", leaders.len()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks `CLIENT LIST`: besides this coordinator, the leader's data connection (named
/// `member-<pid>`) and its one pub/sub connection, and nothing else.
async fn client_list(own: &mut MultiplexedConnection, leader: u32) -> Result<(), String> {
    let me: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(own)
        .await
        .map_err(|err| err.to_string())?;
    let deadline = Instant::now() + STEP;
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(own)
            .await
            .map_err(|err| err.to_string())?;
        let others: Vec<BTreeMap<&str, &str>> = list
            .lines()
            .map(|line| {
                line.split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .collect()
            })
            .filter(|fields: &BTreeMap<&str, &str>| {
                fields.get("id") != Some(&me.to_string().as_str())
            })
            .collect();
        let names: BTreeSet<&str> = others
            .iter()
            .filter_map(|c| c.get("name").copied())
            .collect();
        let subscribers = others
            .iter()
            .filter(|c| c.get("sub").is_some_and(|n| *n != "0"))
            .count();
        let member = format!("member-{leader}");
        let settled = others.len() == 2 && subscribers == 1 && names.contains(member.as_str());
        if settled || Instant::now() > deadline {
            for client in &others {
                println!(
                    "    CLIENT LIST: id={} name={} sub={} cmd={}",
                    client.get("id").unwrap_or(&"?"),
                    client.get("name").filter(|n| !n.is_empty()).unwrap_or(&"-"),
                    client.get("sub").unwrap_or(&"?"),
                    client.get("cmd").unwrap_or(&"?"),
                );
            }
            return check(
                settled,
                format!(
                    "{} connections besides this one: {member}'s and its one pub/sub connection",
                    others.len()
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes one message `tag` and waits for every worker to report it: their subscriptions are
/// live, so none may miss it.
async fn publish_once(
    own: &mut MultiplexedConnection,
    workers: &mut [Worker],
    tag: &str,
) -> Result<(), String> {
    let receivers: i64 = own
        .publish(NEWS, tag)
        .await
        .map_err(|err| err.to_string())?;
    let mut missed = Vec::new();
    for worker in workers.iter_mut() {
        let deadline = Instant::now() + STEP;
        loop {
            let got = worker
                .drain()
                .into_iter()
                .any(|e| e["event"] == "news" && e["message"] == tag);
            if got {
                break;
            }
            if Instant::now() > deadline {
                missed.push(worker.pid);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    check(
        missed.is_empty(),
        format!(
            "{tag}, published once, reached {} of {} workers (missed by {missed:?}); Redis counted {receivers} receiver(s)",
            workers.len() - missed.len(),
            workers.len()
        ),
    )
}

/// Step 5: Redis is killed and started again, empty, while the workers run. During the outage a
/// `watch` of a new channel fails with Redis's own error in every process that asks; after it,
/// the leader alone subscribes again (Redis counts the SUBSCRIBEs), sends every worker's `join`
/// again, and every worker's news stream goes on.
async fn restart_redis(
    server: &mut RedisServer,
    workers: &mut [Worker],
    per: u64,
) -> Result<(), String> {
    println!(
        "\n5. kill -9 of redis-server (pid {}) and a new one on port {}, while the workers run",
        server.child.id().unwrap_or(0),
        server.port
    );
    let outage = async {
        for worker in workers.iter_mut().take(2) {
            worker.send(json!({ "watch": OTHER })).await?;
        }
        for worker in workers.iter_mut().take(2) {
            let watched = worker.event("watched").await?;
            check(
                watched["ok"] == false && watched["redis"].is_string(),
                format!(
                    "during the outage, worker {}'s watch of a new channel failed with the method's own error: RedisFault::Redis({})",
                    worker.pid, watched["redis"]
                ),
            )?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    };
    server.restart(outage).await?;
    let redis = redis::Client::open(server.url.as_str()).map_err(|err| err.to_string())?;
    let mut own = redis
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| err.to_string())?;
    let expected: BTreeSet<String> = workers
        .iter()
        .map(|w| format!("worker-{}", w.pid))
        .collect();
    let deadline = Instant::now() + STEP;
    let (members, subscribes) = loop {
        let members: BTreeSet<String> =
            own.smembers(MEMBERS).await.map_err(|err| err.to_string())?;
        let subscribes = command_calls(&mut own, "subscribe").await?;
        if (members == expected && subscribes >= 1) || Instant::now() > deadline {
            break (members, subscribes);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    check(
        members == expected,
        format!("the leader sent every worker's join again: SMEMBERS has {members:?}"),
    )?;
    // Time for a storm to show, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = command_calls(&mut own, "subscribe").await?;
    check(
        subscribes == 1 && settled == 1,
        format!(
            "Redis counted {settled} SUBSCRIBE since its restart, for {} workers watching",
            workers.len()
        ),
    )?;
    publish_once(&mut own, workers, "third").await?;
    for worker in workers.iter_mut() {
        worker.drain();
    }
    let ended: Vec<&Value> = workers
        .iter()
        .filter_map(|w| w.news_ended.as_ref())
        .collect();
    check(
        ended.is_empty(),
        format!("no worker's news stream ended across the restart (ended: {ended:?})"),
    )?;
    increment(workers, per).await?;
    let total: i64 = own.get(COUNTER).await.map_err(|err| err.to_string())?;
    let expected = (workers.len() as u64 * per) as i64;
    check(
        total == expected,
        format!("the counter, gone with the old server, is {total}, expected {expected}"),
    )
}

/// How many times Redis ran `command` since it started (`INFO commandstats`).
async fn command_calls(own: &mut MultiplexedConnection, command: &str) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(own)
        .await
        .map_err(|err| err.to_string())?;
    let prefix = format!("cmdstat_{command}:calls=");
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0))
}

/// Publishes `tag`-numbered messages until every worker has seen one (after a failover, the new
/// leader's subscription may not be live upstream yet when the first goes out).
async fn publish_to_all(
    own: &mut MultiplexedConnection,
    workers: &mut [Worker],
    tag: &str,
) -> Result<(), String> {
    let mut seen = vec![false; workers.len()];
    for n in 0..200 {
        let message = format!("{tag}-{n}");
        let receivers: i64 = own
            .publish(NEWS, &message)
            .await
            .map_err(|err| err.to_string())?;
        tokio::time::sleep(Duration::from_millis(25)).await;
        for (i, worker) in workers.iter_mut().enumerate() {
            let got = worker.drain().into_iter().any(|e| {
                e["event"] == "news" && e["message"].as_str().is_some_and(|m| m.starts_with(tag))
            });
            seen[i] |= got;
        }
        if seen.iter().all(|s| *s) {
            return check(
                true,
                format!(
                    "{message} reached all {} workers; Redis counted {receivers} receiver(s)",
                    workers.len()
                ),
            );
        }
    }
    check(false, format!("{tag}: seen by {seen:?}"))
}

/// Each worker increments the counter `per` times, all at once; none may fail.
async fn increment(workers: &mut [Worker], per: u64) -> Result<(), String> {
    for worker in workers.iter_mut() {
        worker.send(json!({ "incr": per })).await?;
    }
    for worker in workers.iter_mut() {
        let done = worker.event("incremented").await?;
        check(
            done["failed"] == json!({}),
            format!(
                "worker {}: {per} INCR, failed: {}",
                worker.pid, done["failed"]
            ),
        )?;
    }
    Ok(())
}
