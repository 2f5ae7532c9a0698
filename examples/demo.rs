//! The demo: several real processes share one upstream connection.
//!
//! ```text
//! cargo run --example demo            # 4 workers
//! cargo run --example demo -- 6       # 6 workers
//! ```
//!
//! It starts an embedded upstream registry, spawns worker processes (this same binary with
//! `--worker`) that each create the generated `RegistryClient`, and checks, step by step, that the
//! upstream sees one connection, every worker's calls are answered, a subscription update reaches
//! every worker, a publish lands upstream, that after `kill -9` of the leader a worker takes
//! over while updates keep flowing, and that a leader stopped with SIGTERM hands over to a successor
//! while the others call on, without a failed call. It exits 0 only when every step checked out.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use cluster_client::{Inspector, MemberRole, Options};
use cluster_client_registry_fixture::{Endpoint, RegistryServer};
use cluster_client_workspace::registry_service::{
    Registration, Registry, RegistryClient, UpstreamRegistry,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG=cluster_client=debug` prints the runtime's events of every process on stderr.
    cluster_client_workspace::log_to_stderr();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker(&args[1..]).await;
    }
    let workers = args
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4usize)
        .max(2);
    match coordinate(workers).await {
        Ok(()) => {
            println!("\nevery step checked out");
            ExitCode::SUCCESS
        }
        Err(step) => {
            println!("\nFAILED: {step}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The worker: one process of the service.
// ---------------------------------------------------------------------------------------------

/// Prints one JSON event line.
fn emit(event: Value) {
    println!("{event}");
}

async fn worker(args: &[String]) -> ExitCode {
    let (Some(name), Some(port), Some(upstream)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: demo --worker NAME PORT UPSTREAM");
        return ExitCode::from(64);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("bad port {port}");
        return ExitCode::from(64);
    };
    let upstream = upstream.clone();
    let options = Options::new("registry")
        .port(port)
        .heartbeat_interval(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(2));
    let client = match RegistryClient::create(options, move || {
        let upstream = upstream.clone();
        async move { UpstreamRegistry::connect(&upstream).await }
    })
    .await
    {
        Ok(client) => client,
        Err(err) => {
            emit(json!({ "event": "failed", "error": err.to_string() }));
            return ExitCode::FAILURE;
        }
    };
    emit(json!({ "event": "ready", "leader": client.is_leader(), "epoch": client.epoch() }));

    // Report role changes as they happen (a follower becoming leader after a failover, or
    // following a new leader).
    let mut roles = client.roles();
    tokio::spawn(async move {
        while roles.changed().await.is_ok() {
            let now = *roles.borrow_and_update();
            emit(json!({
                "event": "role", "leader": now.role == MemberRole::Leader, "epoch": now.epoch,
                "leader_pid": now.leader.pid,
            }));
        }
    });

    // Every update of `billing`, as it arrives.
    let mut updates = client.watch("billing".to_owned());
    tokio::spawn(async move {
        while let Some(endpoints) = updates.next().await {
            emit(json!({ "event": "update", "endpoints": endpoints }));
        }
    });

    match client.lookup("billing".to_owned()).await {
        Ok(endpoints) => emit(json!({ "event": "lookup", "endpoints": endpoints })),
        Err(err) => emit(json!({ "event": "lookup", "error": err.to_string() })),
    }

    // Calls all along, as a service would make them; each failure is reported.
    let caller = client.clone();
    tokio::spawn(async move {
        loop {
            if let Err(err) = caller.lookup("billing".to_owned()).await {
                emit(json!({ "event": "call_failed", "error": err.to_string() }));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    client
        .register(Registration::new(
            "workers",
            Endpoint::new(name.clone(), port),
        ))
        .await;
    emit(json!({ "event": "published" }));

    // Run until "quit", the coordinator going away, or SIGTERM; then close the client. This is the
    // pattern for a planned stop: a leader's `close()` hands leadership to another process, which
    // builds its real client while this one still answers the calls it has, so nothing fails.
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(err) => {
            emit(json!({ "event": "failed", "error": format!("no SIGTERM handler: {err}") }));
            return ExitCode::FAILURE;
        }
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(line)) if line.trim() != "quit" => continue,
                _ => break,
            },
            _ = terminate.recv() => break,
        }
    }
    client.close().await;
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// The coordinator: starts everything and checks each step.
// ---------------------------------------------------------------------------------------------

/// One spawned worker and its event lines.
struct Proc {
    name: String,
    pid: u32,
    child: Child,
    events: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Proc {
    fn spawn(name: &str, port: u16, upstream: &str) -> Result<Proc, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(["--worker", name, &port.to_string(), upstream])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {name}: {e}"))?;
        let pid = child.id().ok_or("the worker exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        Ok(Proc {
            name: name.to_owned(),
            pid,
            child,
            events,
            seen: Vec::new(),
        })
    }

    /// Waits for an event matching `pred`.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value, String> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Ok(self.seen.remove(i));
        }
        let deadline = Instant::now() + STEP;
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if pred(&event) => return Ok(event),
                Ok(Some(event)) => self.seen.push(event),
                _ => return Err(format!("{}: no {what} within {STEP:?}", self.name)),
            }
        }
    }

    /// Takes an event matching `pred` if one has already arrived, without waiting.
    fn take(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        let i = self.seen.iter().position(pred)?;
        Some(self.seen.remove(i))
    }

    async fn quit(mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"quit\n").await;
        }
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
    }
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    let what = what.into();
    if ok {
        println!("  ✓ {what}");
        Ok(())
    } else {
        Err(what)
    }
}

/// Prints what the cluster on `port` is, as the `inspect` example does.
async fn show_inspect(port: u16) -> Result<(), String> {
    let inspector = Inspector::connect(&Options::default().port(port))
        .await
        .map_err(|e| format!("inspect: {e}"))?;
    let channels = inspector
        .channels()
        .await
        .map_err(|e| format!("inspect: {e}"))?;
    for channel in channels {
        for line in channel.to_string().lines() {
            println!("   | {line}");
        }
    }
    Ok(())
}

async fn coordinate(n: usize) -> Result<(), String> {
    let upstream = RegistryServer::start("127.0.0.1:0")
        .await
        .map_err(|e| format!("upstream: {e}"))?;
    let addr = upstream.local_addr().to_string();
    upstream.set("billing", vec![Endpoint::new("10.0.0.1", 8080)]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))?;
    println!("upstream registry on {addr}; cluster port {port}; {n} worker processes\n");

    println!("1. start the workers");
    let mut procs = Vec::new();
    for i in 0..n {
        let mut proc = Proc::spawn(&format!("worker-{i}"), port, &addr)?;
        let ready = proc
            .wait("ready", |e| e["event"] == "ready" || e["event"] == "failed")
            .await?;
        check(
            ready["event"] == "ready",
            format!(
                "{} (pid {}) ready as {}",
                proc.name,
                proc.pid,
                if ready["leader"] == true {
                    "LEADER"
                } else {
                    "follower"
                }
            ),
        )?;
        procs.push(proc);
    }
    let live = upstream.wait_for_live_connections(1, STEP).await;
    check(
        live,
        format!(
            "the upstream sees {} connection for {n} processes",
            upstream.stats().live_connections
        ),
    )?;

    println!("\n2. every worker calls lookup(\"billing\") through the cluster");
    for proc in &mut procs {
        let lookup = proc.wait("lookup", |e| e["event"] == "lookup").await?;
        let answer = lookup.get("endpoints").unwrap_or(&lookup["error"]);
        check(
            answer.to_string().contains("10.0.0.1"),
            format!("{}: lookup(\"billing\") = {answer}", proc.name),
        )?;
    }

    println!("\n3. an upstream change reaches every subscriber (one upstream watch)");
    upstream.set("billing", vec![Endpoint::new("10.0.0.2", 8080)]);
    for proc in &mut procs {
        proc.wait("update", |e| {
            e["event"] == "update" && e["endpoints"].to_string().contains("10.0.0.2")
        })
        .await?;
        println!("  ✓ {} got billing = 10.0.0.2:8080", proc.name);
    }
    check(
        upstream.stats().watches.get("billing") == Some(&1),
        "the upstream holds exactly one watch of billing",
    )?;

    println!("\n4. every worker publishes itself under \"workers\"");
    for proc in &mut procs {
        proc.wait("publish", |e| e["event"] == "published").await?;
    }
    let deadline = Instant::now() + STEP;
    while upstream.lookup("workers").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check(
        upstream.lookup("workers").len() == n,
        format!(
            "the upstream lists {} workers",
            upstream.lookup("workers").len()
        ),
    )?;

    println!("\n   what `cargo run --example inspect -- --port {port}` shows now:");
    show_inspect(port).await?;

    println!("\n5. kill -9 the leader");
    let mut leader = procs.remove(0);
    let killed_at = Instant::now();
    leader
        .child
        .start_kill()
        .map_err(|e| format!("kill: {e}"))?;
    let _ = leader.child.wait().await;
    println!("  killed {} (pid {}), the leader", leader.name, leader.pid);
    let mut new_leader = None;
    let deadline = Instant::now() + STEP;
    while new_leader.is_none() && Instant::now() < deadline {
        new_leader = procs.iter_mut().position(|proc| {
            proc.take(|e| e["event"] == "role" && e["leader"] == true)
                .is_some()
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Some(i) = new_leader else {
        return Err("no worker took over".into());
    };
    check(
        true,
        format!("{} took over in {:?}", procs[i].name, killed_at.elapsed()),
    )?;
    let live = upstream.wait_for_live_connections(1, STEP).await;
    check(
        live,
        format!(
            "the upstream again sees {} connection",
            upstream.stats().live_connections
        ),
    )?;

    println!("\n6. updates keep flowing to the survivors");
    upstream.set("billing", vec![Endpoint::new("10.0.0.3", 8080)]);
    for proc in &mut procs {
        proc.wait("update", |e| {
            e["event"] == "update" && e["endpoints"].to_string().contains("10.0.0.3")
        })
        .await?;
        println!("  ✓ {} got billing = 10.0.0.3:8080", proc.name);
    }

    println!("\n   and after the failover:");
    show_inspect(port).await?;

    println!("\n7. SIGTERM the new leader: it hands over before it stops");
    for proc in &mut procs {
        while proc.take(|e| e["event"] == "call_failed").is_some() {}
    }
    let mut leaving = procs.remove(i);
    let stopped_at = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &leaving.pid.to_string()])
        .status()
        .await
        .map_err(|e| format!("kill -TERM: {e}"))?;
    check(
        sent.success(),
        format!("sent SIGTERM to {} (pid {})", leaving.name, leaving.pid),
    )?;
    let exited = tokio::time::timeout(STEP, leaving.child.wait()).await;
    check(
        matches!(exited, Ok(Ok(status)) if status.success()),
        format!(
            "{} closed its client and exited after {:?}",
            leaving.name,
            stopped_at.elapsed()
        ),
    )?;
    let mut successor = None;
    let deadline = Instant::now() + STEP;
    while successor.is_none() && Instant::now() < deadline {
        successor = procs.iter_mut().position(|proc| {
            proc.take(|e| e["event"] == "role" && e["leader"] == true)
                .is_some()
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Some(j) = successor else {
        return Err("no worker took over after the SIGTERM".into());
    };
    check(true, format!("{} leads now", procs[j].name))?;
    // Half a second more of calls, then count what failed since the SIGTERM.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut failed = Vec::new();
    for proc in &mut procs {
        while let Some(event) = proc.take(|e| e["event"] == "call_failed") {
            failed.push(format!("{}: {}", proc.name, event["error"]));
        }
    }
    check(
        failed.is_empty(),
        format!("no call of the {} others failed: {failed:?}", procs.len()),
    )?;
    upstream.set("billing", vec![Endpoint::new("10.0.0.4", 8080)]);
    for proc in &mut procs {
        proc.wait("update", |e| {
            e["event"] == "update" && e["endpoints"].to_string().contains("10.0.0.4")
        })
        .await?;
        println!("  ✓ {} got billing = 10.0.0.4:8080", proc.name);
    }
    let live = upstream.wait_for_live_connections(1, STEP).await;
    check(
        live,
        format!(
            "the upstream sees {} connection",
            upstream.stats().live_connections
        ),
    )?;

    for proc in procs {
        proc.quit().await;
    }
    Ok(())
}
