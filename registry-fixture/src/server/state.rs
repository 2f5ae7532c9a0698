//! The server's shared state: services, connections and who watches what.
//!
//! Everything here is synchronous and runs under one `std::sync::Mutex` that is never held across
//! an `.await`. Pushes are queued with `try_send` while the lock is held, so every connection sees
//! the acks and updates of a service in version order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::protocol::{Endpoint, Stats, Update, ok_line};

/// Identifies one accepted connection.
pub(super) type ConnId = u64;

/// A service's value.
#[derive(Default)]
struct Service {
    endpoints: Vec<Endpoint>,
    version: u64,
}

/// What the state keeps of one connection.
struct Conn {
    /// The connection's outgoing queue (bounded).
    out: mpsc::Sender<Vec<u8>>,
    /// Wakes the connection's task to close it (slow consumer, shutdown).
    close: Arc<Notify>,
    /// The services it watches.
    watching: HashSet<String>,
}

/// Services, connections, watchers.
#[derive(Default)]
pub(super) struct State {
    services: HashMap<String, Service>,
    conns: HashMap<ConnId, Conn>,
    watchers: HashMap<String, HashSet<ConnId>>,
    next_conn: ConnId,
    total_connections: usize,
    /// Set by [`State::close_all`]: no connection is accepted any more.
    shut_down: bool,
}

impl State {
    /// Records a new connection; returns its id, or `None` once the server is shut down.
    pub(super) fn open_conn(
        &mut self,
        out: mpsc::Sender<Vec<u8>>,
        close: Arc<Notify>,
    ) -> Option<ConnId> {
        if self.shut_down {
            return None;
        }
        self.next_conn += 1;
        self.total_connections += 1;
        let id = self.next_conn;
        self.conns.insert(
            id,
            Conn {
                out,
                close,
                watching: HashSet::new(),
            },
        );
        Some(id)
    }

    /// Forgets a connection and all its watches.
    pub(super) fn close_conn(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            for service in conn.watching {
                self.remove_watcher(&service, id);
            }
        }
    }

    /// Asks every connection's task to close, and refuses new ones.
    pub(super) fn close_all(&mut self) {
        self.shut_down = true;
        for conn in self.conns.values() {
            conn.close.notify_one();
        }
    }

    /// Connections open now.
    pub(super) fn live_connections(&self) -> usize {
        self.conns.len()
    }

    /// The endpoints of `service`.
    pub(super) fn lookup(&self, service: &str) -> Vec<Endpoint> {
        self.services
            .get(service)
            .map(|s| s.endpoints.clone())
            .unwrap_or_default()
    }

    /// Replaces the endpoints of `service`, bumps its version and notifies its watchers.
    pub(super) fn set(&mut self, service: &str, endpoints: Vec<Endpoint>) {
        let entry = self.services.entry(service.to_owned()).or_default();
        entry.endpoints = endpoints;
        entry.version += 1;
        self.notify(service);
    }

    /// Adds `endpoint` to `service` (once); notifies the watchers if that changed anything.
    pub(super) fn register(&mut self, service: &str, endpoint: Endpoint) {
        let entry = self.services.entry(service.to_owned()).or_default();
        if !entry.endpoints.contains(&endpoint) {
            entry.endpoints.push(endpoint);
            entry.version += 1;
            self.notify(service);
        }
    }

    /// Removes `endpoint` from `service`; notifies the watchers if that changed anything.
    pub(super) fn deregister(&mut self, service: &str, endpoint: &Endpoint) {
        if let Some(entry) = self.services.get_mut(service) {
            let before = entry.endpoints.len();
            entry.endpoints.retain(|e| e != endpoint);
            if entry.endpoints.len() != before {
                entry.version += 1;
                self.notify(service);
            }
        }
    }

    /// Makes `conn` a watcher of `service` and queues, in this order, the ack of request
    /// `request_id` and the current value. Returns `false` if the connection's queue is full
    /// (the connection has then been asked to close).
    pub(super) fn watch(&mut self, conn: ConnId, service: &str, request_id: u64) -> bool {
        let update = self.current(service).to_line();
        let Some(entry) = self.conns.get_mut(&conn) else {
            return false;
        };
        entry.watching.insert(service.to_owned());
        self.watchers
            .entry(service.to_owned())
            .or_default()
            .insert(conn);
        for line in [ok_line(request_id, &()), update] {
            if !self.push(conn, line) {
                return false;
            }
        }
        true
    }

    /// Stops `conn` watching `service`.
    pub(super) fn unwatch(&mut self, conn: ConnId, service: &str) {
        let was_watching = self
            .conns
            .get_mut(&conn)
            .is_some_and(|entry| entry.watching.remove(service));
        if was_watching {
            self.remove_watcher(service, conn);
        }
    }

    /// The counters.
    pub(super) fn stats(&self) -> Stats {
        Stats {
            live_connections: self.conns.len(),
            total_connections: self.total_connections,
            watches: self
                .watchers
                .iter()
                .map(|(service, conns)| (service.clone(), conns.len()))
                .collect(),
        }
    }

    fn current(&self, service: &str) -> Update {
        let (endpoints, version) = self
            .services
            .get(service)
            .map(|s| (s.endpoints.clone(), s.version))
            .unwrap_or_default();
        Update {
            service: service.to_owned(),
            endpoints,
            version,
        }
    }

    fn remove_watcher(&mut self, service: &str, conn: ConnId) {
        if let Some(conns) = self.watchers.get_mut(service) {
            conns.remove(&conn);
            if conns.is_empty() {
                self.watchers.remove(service);
            }
        }
    }

    /// Queues the current value of `service` to each of its watchers.
    fn notify(&self, service: &str) {
        let Some(conns) = self.watchers.get(service) else {
            return;
        };
        let line = self.current(service).to_line();
        for conn in conns {
            self.push(*conn, line.clone());
        }
    }

    /// Queues `line` to `conn` without waiting. A full queue means a consumer too slow to keep
    /// up: the connection is asked to close and `false` is returned.
    fn push(&self, conn: ConnId, line: Vec<u8>) -> bool {
        let Some(entry) = self.conns.get(&conn) else {
            return false;
        };
        match entry.out.try_send(line) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn,
                    "registry: watcher too slow, its queue is full; closing it"
                );
                entry.close.notify_one();
                false
            }
            // The connection is already going away.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}
