//! Output: one JSON line per answer, item and event on stdout, written by one printer; the answer
//! of a call, the error kinds, panics and the runtime's `tracing` events as JSON lines.

use cluster_client_registry_fixture::RegistryError;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Prints JSON lines from any task, in order, one write each.
#[derive(Clone)]
pub struct Out(mpsc::UnboundedSender<Value>);

impl Out {
    pub fn send(&self, line: Value) {
        let _ = self.0.send(line);
    }
}

/// The printer: it writes every line sent to the returned [`Out`] (and its clones) on stdout, and
/// ends when they are all dropped or stdout is closed.
pub fn printer() -> (Out, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let task = tokio::task::spawn_blocking(move || {
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
    (Out(tx), task)
}

/// The answer to the command `id`: `{"id", "ok"}` or `{"id", "err", "kind"}`.
pub fn answer<T: serde::Serialize>(id: u64, result: Result<T, RegistryError>) -> Value {
    match result {
        Ok(value) => json!({ "id": id, "ok": value }),
        Err(err) => json!({ "id": id, "err": err.to_string(), "kind": kind(&err) }),
    }
}

/// The cluster error kind carried by a `RegistryError::Cluster`, or the variant name.
pub fn kind(err: &RegistryError) -> String {
    match err {
        RegistryError::Cluster { kind, .. } => kind.clone(),
        other => format!("{other:?}")
            .split('(')
            .next()
            .unwrap_or("registry")
            .to_lowercase(),
    }
}

/// Prints every panic as a JSON line on stdout, then reports it as usual on stderr.
pub fn report_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        use std::io::Write;
        let line =
            json!({ "event": "panic", "message": info.to_string(), "pid": std::process::id() });
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        default(info);
    }));
}
