//! A worker process for the end-to-end tests: it joins the `registry` channel (through the generated
//! client or the hand-written seam), then runs JSON commands read from stdin and prints one JSON
//! line per answer, subscription item and event on stdout. It exits when stdin closes, or on
//! SIGTERM after closing its clients (a leader hands its followers over first).
//!
//! A panic anywhere in the process prints `{"event":"panic",...}` on stdout (then the default
//! report on stderr), so a test can assert that no worker panicked. With `--log LEVEL` the
//! runtime's `tracing` events up to `LEVEL` are printed by `tracing-subscriber`'s JSON format
//! (`{"level","target","fields":{"message",..},"span",..}`); without it, `RUST_LOG` filters them
//! onto stderr.
//!
//! - [`args`]: the command line (seam, upstream, channels, the runtime's options).
//! - [`client`]: the client seam, generated or hand-written.
//! - [`command`]: the commands on stdin and what each does.
//! - [`tasks`]: subscriptions and spins, which outlive their command.
//! - [`output`]: the JSON lines on stdout (answers, panics, `tracing` events).

mod args;
mod client;
mod command;
mod output;
mod tasks;

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use cluster_client_workspace::registry_service::Registry;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::client::{Client, with_client};
use crate::command::{Routed, run};
use crate::tasks::Tasks;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args::parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("cc-worker: {err}");
            return ExitCode::from(64);
        }
    };
    output::report_panics();
    let (out, printer) = output::printer();
    // `--log LEVEL`: the runtime's events as JSON lines among the others on stdout, for tests to
    // read; else `RUST_LOG` filters them onto stderr.
    let logged = match args.log {
        Some(max) => tracing_subscriber::fmt()
            .json()
            .with_max_level(max)
            .with_writer(std::io::stdout)
            .try_init(),
        None => {
            cluster_client_workspace::log_to_stderr();
            Ok(())
        }
    };
    if let Err(err) = logged {
        eprintln!("cc-worker: no log: {err}");
    }
    let mut clients = Vec::new();
    for channel in &args.channels {
        match Client::create(
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
    // Every change of role, as it happens: `{"event":"role","ch",...}`.
    for (ch, client) in clients.iter().enumerate() {
        let (mut roles, out) = (client.roles(), out.clone());
        tokio::spawn(async move {
            while roles.changed().await.is_ok() {
                let now = *roles.borrow_and_update();
                out.send(json!({
                    "event": "role", "ch": ch, "role": now.role, "epoch": now.epoch,
                    "leader_pid": now.leader.pid, "leader_since": now.leader.since_ms,
                }));
            }
        });
    }
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
    // SIGTERM is a planned leave: the clients close (a leader hands its followers over), then the
    // process exits, as the README's pattern does.
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(err) => {
            eprintln!("cc-worker: no SIGTERM handler: {err}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            _ = terminate.recv() => {
                out.send(json!({ "event": "terminating" }));
                None
            }
        };
        let Some(line) = line else { break };
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
    tasks.stop_all().await;
    drop(out);
    let _ = printer.await;
    ExitCode::SUCCESS
}
