//! The state a connection's tasks, calls and watch streams share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use super::watch::SnapshotQueue;
use crate::error::RegistryError;
use crate::protocol::{Endpoint, Op, Request, ServerMessage};

type Reply = Result<Box<RawValue>, RegistryError>;

/// Shared by the [`RegistryConn`](super::RegistryConn), its reader and writer tasks and its streams.
pub(crate) struct ClientShared {
    next_id: AtomicU64,
    /// The writer task's queue.
    out: mpsc::Sender<Vec<u8>>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set once the connection is closed: why.
    closed: Option<RegistryError>,
    /// Calls awaiting their answer, by request id.
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Local subscribers, by service.
    watches: HashMap<String, ServiceWatch>,
    next_sub: u64,
}

/// The local subscribers of one service; the server is watched once for all of them.
#[derive(Default)]
struct ServiceWatch {
    subs: Vec<(u64, Arc<SnapshotQueue>)>,
    /// The latest value and its version, given at once to a late subscriber.
    last: Option<(u64, Vec<Endpoint>)>,
}

/// Removes a call's pending entry however the call ends (answer, timeout, cancellation).
struct PendingGuard<'a> {
    shared: &'a ClientShared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().pending.remove(&self.id);
    }
}

impl ClientShared {
    pub(super) fn new(out: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            out,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed_reason(&self) -> RegistryError {
        self.lock().closed.clone().unwrap_or(RegistryError::Closed)
    }

    /// Whether the connection is closed.
    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Sends `op` and waits, at most `timeout`, for its answer: the raw JSON of `ok`.
    pub(super) async fn call(
        &self,
        op: Op,
        timeout: Duration,
    ) -> Result<Box<RawValue>, RegistryError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.lock();
            if let Some(reason) = &inner.closed {
                return Err(reason.clone());
            }
            inner.pending.insert(id, tx);
        }
        let _guard = PendingGuard { shared: self, id };
        let line = Request { id, op }.to_line();
        let exchange = async {
            if self.out.send(line).await.is_err() {
                return Err(self.closed_reason());
            }
            match rx.await {
                Ok(reply) => reply,
                Err(_) => Err(self.closed_reason()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(reply) => reply,
            Err(_) => Err(RegistryError::Timeout),
        }
    }

    /// Delivers one message from the server.
    pub(super) fn route(&self, message: ServerMessage) {
        match message {
            ServerMessage::Reply { id, result } => {
                let waiter = self.lock().pending.remove(&id);
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(result.map_err(RegistryError::Server));
                    }
                    // A call that timed out, or the answer to a best-effort unwatch.
                    None => tracing::trace!(id, "registry: answer nobody waits for"),
                }
            }
            ServerMessage::Update(update) => {
                let mut inner = self.lock();
                let Some(watch) = inner.watches.get_mut(&update.service) else {
                    return; // Unwatched meanwhile.
                };
                if matches!(&watch.last, Some((version, _)) if update.version <= *version) {
                    return; // Stale or already seen.
                }
                for (_, queue) in &watch.subs {
                    queue.push(update.endpoints.clone());
                }
                watch.last = Some((update.version, update.endpoints));
            }
        }
    }

    /// Marks the connection closed: every waiting call fails with `reason`, every stream ends.
    pub(super) fn fail_all(&self, reason: RegistryError) {
        let (pending, watches) = {
            let mut inner = self.lock();
            if inner.closed.is_none() {
                inner.closed = Some(reason.clone());
            }
            (
                std::mem::take(&mut inner.pending),
                std::mem::take(&mut inner.watches),
            )
        };
        for waiter in pending.into_values() {
            let _ = waiter.send(Err(reason.clone()));
        }
        for watch in watches.into_values() {
            for (_, queue) in watch.subs {
                queue.close();
            }
        }
    }

    /// Adds a local subscriber of `service`. Returns its id, its queue (holding the latest
    /// value if one is known), and whether the server must be asked to watch `service`.
    pub(super) fn add_sub(
        &self,
        service: &str,
    ) -> Result<(u64, Arc<SnapshotQueue>, bool), RegistryError> {
        let mut inner = self.lock();
        if let Some(reason) = &inner.closed {
            return Err(reason.clone());
        }
        inner.next_sub += 1;
        let sub = inner.next_sub;
        let queue = Arc::new(SnapshotQueue::default());
        let first = match inner.watches.get_mut(service) {
            Some(watch) => {
                if let Some((_, endpoints)) = &watch.last {
                    queue.push(endpoints.clone());
                }
                watch.subs.push((sub, Arc::clone(&queue)));
                false
            }
            None => {
                let watch = ServiceWatch {
                    subs: vec![(sub, Arc::clone(&queue))],
                    last: None,
                };
                inner.watches.insert(service.to_owned(), watch);
                true
            }
        };
        Ok((sub, queue, first))
    }

    /// Removes a local subscriber; unwatches the service upstream if it was the last one.
    pub(super) fn remove_sub(&self, service: &str, sub: u64) {
        let unwatch = {
            let mut inner = self.lock();
            let emptied = match inner.watches.get_mut(service) {
                Some(watch) => {
                    watch.subs.retain(|(id, _)| *id != sub);
                    watch.subs.is_empty()
                }
                None => false,
            };
            if emptied {
                inner.watches.remove(service);
            }
            emptied && inner.closed.is_none()
        };
        if unwatch {
            self.send_unwatch(service);
        }
    }

    /// The upstream watch of `service` failed: end all its local streams and unwatch.
    pub(super) fn abandon_watch(&self, service: &str) {
        let (watch, open) = {
            let mut inner = self.lock();
            (inner.watches.remove(service), inner.closed.is_none())
        };
        if let Some(watch) = watch {
            for (_, queue) in watch.subs {
                queue.close();
            }
        }
        if open {
            self.send_unwatch(service);
        }
    }

    /// Queues an `unwatch` without waiting. If the queue is full it is skipped: the server
    /// keeps pushing that service until the connection closes, and the reader ignores it.
    fn send_unwatch(&self, service: &str) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = Request {
            id,
            op: Op::Unwatch {
                service: service.to_owned(),
            },
        }
        .to_line();
        if let Err(mpsc::error::TrySendError::Full(_)) = self.out.try_send(line) {
            tracing::debug!(service, "registry: outgoing queue full, unwatch skipped");
        }
    }
}
