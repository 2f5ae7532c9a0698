//! A worker process for the end-to-end tests: it joins the `registry` channel (through the generated
//! client or the hand-written seam), then runs JSON commands read from stdin and prints one JSON
//! line per answer, subscription item and event on stdout. It exits when stdin closes.
//!
//! A panic anywhere in the process prints `{"event":"panic",...}` on stdout (then the default
//! report on stderr), so a test can assert that no worker panicked. With `--log LEVEL` the
//! runtime's `tracing` events up to `LEVEL` are printed as `{"log":LEVEL,"target":..,"fields":{..}}`.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cluster_client::{Options, Role};
use cluster_client_workspace::api::{Registry, RegistryClient, UpstreamRegistry};
use cluster_client_workspace::manual::ManualRegistry;
use cluster_client_workspace::registry::{Endpoint, RegistryError};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// One command from stdin.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Command {
    Lookup {
        id: u64,
        service: String,
    },
    Echo {
        id: u64,
        payload: String,
    },
    Pause {
        id: u64,
        ms: u64,
    },
    Report {
        id: u64,
        note: String,
    },
    Register {
        id: u64,
        service: String,
        host: String,
        port: u16,
    },
    Watch {
        sub: String,
        service: String,
    },
    /// Like `watch`, through the non-broadcast `jobs` method.
    Jobs {
        sub: String,
        queue: String,
    },
    Unwatch {
        sub: String,
    },
    Status {
        id: u64,
    },
    Close {
        id: u64,
    },
    /// `count` sequential echoes; answers with how many succeeded and the error kinds seen.
    Loop {
        id: u64,
        count: u64,
        payload: String,
    },
    /// Sequential echoes (or, with `lookup`, lookups of the service `payload`: not idempotent, so
    /// never retried), `gap_ms` apart, until `stop_spin`. Every failed call, and every call that
    /// took longer than `slow_ms`, prints `{"spin":id,"kind"|"slow":..,"ms":..}` at once.
    Spin(SpinSpec),
    /// Panics in a task (for the tests of the harness itself).
    Panic {
        id: u64,
    },
    /// Stops the spin `spin`; answers with its totals `{ok, errors, max_ms}`.
    StopSpin {
        id: u64,
        spin: u64,
    },
}

/// What a spin does.
#[derive(Debug, Deserialize)]
struct SpinSpec {
    id: u64,
    payload: String,
    #[serde(default)]
    gap_ms: u64,
    #[serde(default = "no_limit")]
    slow_ms: u64,
    #[serde(default)]
    lookup: bool,
}

fn no_limit() -> u64 {
    u64::MAX
}

/// A command and the index of the channel (in `--channels`) it is for.
#[derive(Debug, Deserialize)]
struct Routed {
    #[serde(default)]
    ch: usize,
    #[serde(flatten)]
    command: Command,
}

/// Either client, so every scenario runs through both.
#[derive(Clone)]
enum Client {
    Generated(RegistryClient),
    Manual(ManualRegistry),
}

macro_rules! with_client {
    ($client:expr, $c:ident => $body:expr) => {
        match $client {
            Client::Generated($c) => $body,
            Client::Manual($c) => $body,
        }
    };
}

impl Client {
    fn is_leader(&self) -> bool {
        match self {
            Client::Generated(c) => c.is_leader(),
            Client::Manual(c) => c.handle().is_leader(),
        }
    }

    fn epoch(&self) -> u64 {
        match self {
            Client::Generated(c) => c.epoch(),
            Client::Manual(c) => c.handle().epoch(),
        }
    }
}

struct Args {
    seam: String,
    /// Print the runtime's `tracing` events up to this level.
    log: Option<tracing::Level>,
    upstream: String,
    /// One client per channel name, all on the same port.
    channels: Vec<String>,
    options: Options,
}

fn parse_args() -> Result<Args, String> {
    let mut seam = "generated".to_owned();
    let mut upstream = String::new();
    let mut channels = vec!["registry".to_owned()];
    let mut options = Options::default();
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| e.to_string())
        };
        match flag.as_str() {
            "--seam" => seam = value()?,
            "--channels" => channels = value()?.split(',').map(str::to_owned).collect(),
            "--upstream" => upstream = value()?,
            "--port" => options = options.port(value()?.parse().map_err(|e| format!("{e}"))?),
            "--role" => {
                options = options.role(match value()?.as_str() {
                    "leader" => Role::Leader,
                    "follower" => Role::Follower,
                    _ => Role::Auto,
                })
            }
            "--heartbeat-ms" => options = options.heartbeat_interval(ms(value()?)?),
            "--response-ms" => options = options.response_timeout(ms(value()?)?),
            "--max-wait-ms" => options = options.max_wait_time(ms(value()?)?),
            "--connect-ms" => options = options.connect_timeout(ms(value()?)?),
            "--single" => options = options.single_mode(true),
            "--register-ms" => options = options.register_timeout(ms(value()?)?),
            "--max-connections" => {
                options = options.max_connections(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-calls" => {
                options =
                    options.max_calls_per_follower(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-subs" => {
                options = options
                    .max_subscriptions_per_follower(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--log" => {
                log = Some(
                    value()?
                        .parse::<tracing::Level>()
                        .map_err(|e| format!("{e}"))?,
                )
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        seam,
        log,
        upstream,
        channels,
        options,
    })
}

async fn create(
    seam: &str,
    options: Options,
    upstream: String,
) -> Result<Client, cluster_client::Error> {
    if seam == "manual" {
        return ManualRegistry::create(options, upstream)
            .await
            .map(Client::Manual);
    }
    RegistryClient::create(options, move || {
        let upstream = upstream.clone();
        async move { UpstreamRegistry::connect(&upstream).await }
    })
    .await
    .map(Client::Generated)
}

/// Prints JSON lines from any task, in order, one write each.
#[derive(Clone)]
struct Out(mpsc::UnboundedSender<Value>);

impl Out {
    fn send(&self, line: Value) {
        let _ = self.0.send(line);
    }
}

fn answer<T: serde::Serialize>(id: u64, result: Result<T, RegistryError>) -> Value {
    match result {
        Ok(value) => json!({ "id": id, "ok": value }),
        Err(err) => json!({ "id": id, "err": err.to_string(), "kind": kind(&err) }),
    }
}

/// The cluster error kind carried by a `RegistryError::Cluster`, or the variant name.
fn kind(err: &RegistryError) -> String {
    match err {
        RegistryError::Cluster(text) => text.split(':').next().unwrap_or("cluster").to_owned(),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("registry")
            .to_lowercase(),
    }
}

/// What commands share: running subscriptions and spins.
#[derive(Default)]
struct Tasks {
    subs: Mutex<HashMap<String, AbortHandle>>,
    spins: Mutex<HashMap<u64, Spinning>>,
}

/// A running spin: its stop flag and the task that answers with its totals.
struct Spinning {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Value>,
}

/// Prints every item of `stream` as `{"sub", "item"}`, then its end.
fn follow(
    sub: String,
    mut stream: cluster_client::Subscription<Vec<Endpoint>>,
    out: Out,
    subs: &Mutex<HashMap<String, AbortHandle>>,
) {
    let name = sub.clone();
    let printer = out.clone();
    let task = tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            printer.send(json!({ "sub": name, "item": item }));
        }
        let reason = stream.close_reason().map(|e| format!("{}: {e}", e.kind()));
        printer.send(json!({ "sub": name, "end": reason }));
    });
    subs.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(sub.clone(), task.abort_handle());
    out.send(json!({ "sub": sub, "watching": true }));
}

async fn run(client: Client, command: Command, out: Out, tasks: Arc<Tasks>) {
    let subs = &tasks.subs;
    match command {
        Command::Lookup { id, service } => out.send(answer(
            id,
            with_client!(&client, c => c.lookup(service).await),
        )),
        Command::Echo { id, payload } => out.send(answer(
            id,
            with_client!(&client, c => c.echo(payload).await),
        )),
        Command::Pause { id, ms } => {
            out.send(answer(id, with_client!(&client, c => c.pause(ms).await)))
        }
        Command::Report { id, note } => {
            with_client!(&client, c => c.report(note).await);
            out.send(json!({ "id": id, "ok": null }));
        }
        Command::Register {
            id,
            service,
            host,
            port,
        } => {
            with_client!(&client, c => c.register(service, Endpoint::new(host, port)).await);
            out.send(json!({ "id": id, "ok": null }));
        }
        Command::Watch { sub, service } => {
            let stream = with_client!(&client, c => c.watch(service));
            follow(sub, stream, out, subs);
        }
        Command::Jobs { sub, queue } => {
            let stream = with_client!(&client, c => c.jobs(queue));
            follow(sub, stream, out, subs);
        }

        Command::Unwatch { sub } => {
            if let Some(task) = subs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&sub)
            {
                task.abort();
            }
            out.send(json!({ "sub": sub, "unwatched": true }));
        }
        Command::Status { id } => {
            // The term first: the role read after it is that term's, or a later one's.
            let epoch = client.epoch();
            out.send(json!({
                "id": id, "leader": client.is_leader(), "epoch": epoch, "pid": std::process::id()
            }));
        }
        Command::Close { id } => {
            with_client!(&client, c => Registry::close(c).await);
            out.send(json!({ "id": id, "ok": null }));
        }
        Command::Loop { id, count, payload } => {
            let mut ok = 0u64;
            let mut errors: HashMap<String, u64> = HashMap::new();
            for _ in 0..count {
                match with_client!(&client, c => c.echo(payload.clone()).await) {
                    Ok(echoed) if echoed == payload => ok += 1,
                    Ok(_) => *errors.entry("wrong_answer".to_owned()).or_default() += 1,
                    Err(err) => *errors.entry(kind(&err)).or_default() += 1,
                }
            }
            out.send(json!({ "id": id, "ok": { "ok": ok, "errors": errors } }));
        }
        Command::Spin(spec) => {
            let stop = Arc::new(AtomicBool::new(false));
            let id = spec.id;
            let task = tokio::spawn(spin(client, spec, out, Arc::clone(&stop)));
            tasks
                .spins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, Spinning { stop, task });
        }
        Command::Panic { id } => panic!("asked to panic by command {id}"),
        Command::StopSpin { id, spin } => {
            let spinning = tasks
                .spins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&spin);
            let Some(Spinning { stop, task }) = spinning else {
                return out.send(json!({ "id": id, "err": "no such spin", "kind": "bad_command" }));
            };
            stop.store(true, Ordering::Relaxed);
            match task.await {
                Ok(totals) => out.send(json!({ "id": id, "ok": totals })),
                Err(err) => {
                    out.send(json!({ "id": id, "err": err.to_string(), "kind": "spin_failed" }))
                }
            }
        }
    }
}

/// The loop behind [`Command::Spin`]; returns its totals.
async fn spin(client: Client, spec: SpinSpec, out: Out, stop: Arc<AtomicBool>) -> Value {
    let SpinSpec {
        id,
        payload,
        gap_ms,
        slow_ms,
        lookup,
    } = spec;
    let mut ok = 0u64;
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut max_ms = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = if lookup {
            with_client!(&client, c => c.lookup(payload.clone()).await).map(|_| payload.clone())
        } else {
            with_client!(&client, c => c.echo(payload.clone()).await)
        };
        let ms = started.elapsed().as_millis() as u64;
        max_ms = max_ms.max(ms);
        match result {
            Ok(echoed) if echoed == payload => ok += 1,
            Ok(other) => {
                *errors.entry("wrong_answer".to_owned()).or_default() += 1;
                out.send(json!({ "spin": id, "kind": "wrong_answer", "got": other, "ms": ms }));
            }
            Err(err) => {
                let kind = kind(&err);
                out.send(json!({ "spin": id, "kind": kind, "err": err.to_string(), "ms": ms }));
                *errors.entry(kind).or_default() += 1;
            }
        }
        if ms > slow_ms {
            out.send(json!({ "spin": id, "slow": ms }));
        }
        if gap_ms > 0 {
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        }
    }
    json!({ "ok": ok, "errors": errors, "max_ms": max_ms })
}

/// Prints every panic as a JSON line on stdout, then reports it as usual on stderr.
fn report_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        use std::io::Write;
        let line =
            json!({ "event": "panic", "message": info.to_string(), "pid": std::process::id() });
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        default(info);
    }));
}

/// A `tracing` subscriber that prints each event up to a level as one JSON line.
struct JsonLog {
    out: Out,
    max: tracing::Level,
}

/// An event's fields as JSON.
struct Fields(serde_json::Map<String, Value>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), json!(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), json!(value));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), json!(value));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), json!(value));
    }
}

impl tracing::Subscriber for JsonLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let metadata = event.metadata();
        self.out.send(json!({
            "log": metadata.level().as_str(), "target": metadata.target(), "fields": fields.0
        }));
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("cc-worker: {err}");
            return ExitCode::from(64);
        }
    };
    report_panics();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let out = Out(tx);
    if let Some(max) = args.log {
        let log = JsonLog {
            out: out.clone(),
            max,
        };
        if tracing::subscriber::set_global_default(log).is_err() {
            eprintln!("cc-worker: a tracing subscriber is already set");
        }
    }
    let printer = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let stdout = std::io::stdout();
        while let Some(line) = rx.blocking_recv() {
            let mut lock = stdout.lock();
            if writeln!(lock, "{line}")
                .and_then(|()| lock.flush())
                .is_err()
            {
                return;
            }
        }
    });
    let mut clients = Vec::new();
    for channel in &args.channels {
        match create(
            &args.seam,
            args.options.clone().name(channel.clone()),
            args.upstream.clone(),
        )
        .await
        {
            Ok(client) => clients.push(client),
            Err(err) => {
                out.send(
                    json!({ "event": "failed", "kind": err.kind(), "error": err.to_string() }),
                );
                drop(out);
                let _ = printer.await;
                return ExitCode::from(2);
            }
        }
    }
    let leaders: Vec<bool> = clients.iter().map(Client::is_leader).collect();
    out.send(json!({
        "event": "ready", "leader": leaders[0], "leaders": leaders, "epoch": clients[0].epoch(), "pid": std::process::id()
    }));
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let tasks = Arc::new(Tasks::default());
    while let Some(line) = lines.recv().await {
        let parsed = serde_json::from_str::<Routed>(&line);
        match parsed.map(|routed| (clients.get(routed.ch).cloned(), routed.command)) {
            Ok((Some(client), command)) => {
                tokio::spawn(run(client, command, out.clone(), Arc::clone(&tasks)));
            }
            Ok((None, _)) => {
                out.send(json!({ "event": "bad_command", "error": "no such channel" }))
            }
            Err(err) => out.send(json!({ "event": "bad_command", "error": err.to_string() })),
        }
    }
    for client in &clients {
        with_client!(client, c => Registry::close(c).await);
    }
    drop(out);
    let _ = printer.await;
    ExitCode::SUCCESS
}
