//! What runs beyond one command: subscriptions printed item by item, and spins (calls in a loop
//! until stopped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cluster_client::Subscription;
use cluster_client_registry_fixture::Endpoint;
use cluster_client_workspace::registry_service::Registry;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::task::{AbortHandle, JoinHandle};

use crate::client::{Client, with_client};
use crate::command::SpinSpec;
use crate::output::{Out, kind};

/// What commands share: running subscriptions and spins.
#[derive(Default)]
pub struct Tasks {
    subs: Mutex<HashMap<String, AbortHandle>>,
    spins: Mutex<HashMap<u64, Spinning>>,
}

/// A running spin: its stop flag and the task that answers with its totals.
struct Spinning {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Value>,
}

impl Tasks {
    /// Prints `{"sub", "ready"}` once `stream` is live upstream (or failed), every item as
    /// `{"sub", "item"}`, then its end, until [`unwatch`](Self::unwatch).
    pub fn follow(&self, sub: String, mut stream: Subscription<Vec<Endpoint>>, out: Out) {
        let name = sub.clone();
        let printer = out.clone();
        let task = tokio::spawn(async move {
            match stream.ready().await {
                Ok(()) => printer.send(json!({ "sub": name, "ready": true })),
                Err(err) => {
                    printer.send(json!({ "sub": name, "ready": false, "kind": err.kind() }))
                }
            }
            while let Some(item) = stream.next().await {
                printer.send(json!({ "sub": name, "item": item }));
            }
            let reason = stream.close_reason().map(|e| format!("{}: {e}", e.kind()));
            printer.send(json!({ "sub": name, "end": reason }));
        });
        self.subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sub.clone(), task.abort_handle());
        out.send(json!({ "sub": sub, "watching": true }));
    }

    /// Stops printing the subscription `sub` (dropping it unsubscribes).
    pub fn unwatch(&self, sub: &str) {
        if let Some(task) = self
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sub)
        {
            task.abort();
        }
    }

    /// Starts the spin `spec.id`.
    pub fn start_spin(&self, client: Client, spec: SpinSpec, out: Out) {
        let stop = Arc::new(AtomicBool::new(false));
        let id = spec.id;
        let task = tokio::spawn(spin(client, spec, out, Arc::clone(&stop)));
        self.spins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Spinning { stop, task });
    }

    /// Stops every subscription and spin (each holds the output open), waiting for the spins.
    pub async fn stop_all(&self) {
        for (_, task) in self
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            task.abort();
        }
        let spins: Vec<u64> = self
            .spins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        for spin in spins {
            let _ = self.stop_spin(spin).await;
        }
    }

    /// Stops the spin `spin` and waits for its totals; `None` if there is no such spin.
    pub async fn stop_spin(&self, spin: u64) -> Option<Result<Value, tokio::task::JoinError>> {
        let spinning = self
            .spins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&spin);
        let Spinning { stop, task } = spinning?;
        stop.store(true, Ordering::Relaxed);
        Some(task.await)
    }
}

/// The loop behind [`Command::Spin`](crate::command::Command::Spin); returns its totals.
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
