//! The commands read from stdin, one JSON object a line, and what each one does.

use std::collections::HashMap;
use std::sync::Arc;

use cluster_client_registry_fixture::Endpoint;
use cluster_client_workspace::registry_service::{Registration, Registry};
use serde::Deserialize;
use serde_json::json;

use crate::client::{Client, with_client};
use crate::output::{Out, answer, kind};
use crate::tasks::Tasks;

/// One command from stdin.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
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
    /// The channel's snapshot, from its leader.
    Stats {
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
pub struct SpinSpec {
    pub id: u64,
    pub payload: String,
    #[serde(default)]
    pub gap_ms: u64,
    #[serde(default = "no_limit")]
    pub slow_ms: u64,
    #[serde(default)]
    pub lookup: bool,
}

fn no_limit() -> u64 {
    u64::MAX
}

/// A command and the index of the channel (in `--channels`) it is for.
#[derive(Debug, Deserialize)]
pub struct Routed {
    #[serde(default)]
    pub ch: usize,
    #[serde(flatten)]
    pub command: Command,
}

/// Runs one command on `client`, printing its answer (or, for a subscription, its items).
pub async fn run(client: Client, command: Command, out: Out, tasks: Arc<Tasks>) {
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
            let registration = Registration::new(service, Endpoint::new(host, port));
            with_client!(&client, c => c.register(registration.clone()).await);
            out.send(json!({ "id": id, "ok": null }));
        }
        Command::Watch { sub, service } => {
            let stream = with_client!(&client, c => c.watch(service));
            tasks.follow(sub, stream, out);
        }
        Command::Jobs { sub, queue } => {
            let stream = with_client!(&client, c => c.jobs(queue));
            tasks.follow(sub, stream, out);
        }
        Command::Unwatch { sub } => {
            tasks.unwatch(&sub);
            out.send(json!({ "sub": sub, "unwatched": true }));
        }
        Command::Status { id } => {
            // The term first: the role read after it is that term's, or a later one's.
            let epoch = client.epoch();
            let leader_pid = client.roles().borrow().leader.pid;
            out.send(json!({
                "id": id, "leader": client.is_leader(), "epoch": epoch, "pid": std::process::id(),
                "leader_pid": leader_pid,
            }));
        }
        Command::Stats { id } => match client.stats().await {
            Ok(stats) => out.send(json!({ "id": id, "ok": stats })),
            Err(err) => out.send(json!({ "id": id, "err": err.to_string(), "kind": err.kind() })),
        },
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
        Command::Spin(spec) => tasks.start_spin(client, spec, out),
        Command::Panic { id } => panic!("asked to panic by command {id}"),
        Command::StopSpin { id, spin } => match tasks.stop_spin(spin).await {
            None => out.send(json!({ "id": id, "err": "no such spin", "kind": "bad_command" })),
            Some(Ok(totals)) => out.send(json!({ "id": id, "ok": totals })),
            Some(Err(err)) => {
                out.send(json!({ "id": id, "err": err.to_string(), "kind": "spin_failed" }))
            }
        },
    }
}
