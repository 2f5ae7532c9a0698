//! The registry client: one multiplexed TCP connection.

mod shared;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::RegistryError;
use crate::io::{LineReader, write_loop};
use crate::protocol::{Endpoint, MAX_SERVER_LINE_LEN, Op, ServerMessage, Stats};
use shared::ClientShared;
pub use watch::WatchStream;

/// The deadline of every call (and of the connect) unless
/// [`connect_with_timeout`](RegistryConn::connect_with_timeout) says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Capacity of the outgoing queue, in lines.
const OUT_QUEUE: usize = 1024;

/// ONE TCP connection to a registry server.
///
/// Calls take `&self` and may run concurrently: each request carries an id and a reader task
/// routes each answer to its caller, and each pushed update to the watch streams of its service
/// (the server is watched once per service, however many local streams there are).
///
/// Dropping the connection closes it, as [`close`](Self::close) does: calls in flight fail with
/// [`RegistryError::Closed`] and watch streams end.
pub struct RegistryConn {
    shared: Arc<ClientShared>,
    call_timeout: Duration,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RegistryConn {
    /// Connects to the server at `addr`, with the default deadline [`CALL_TIMEOUT`].
    /// Must be called within a tokio runtime.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Self, RegistryError> {
        Self::connect_with_timeout(addr, CALL_TIMEOUT).await
    }

    /// Connects to the server at `addr`; the connect and every call are bounded by `call_timeout`.
    pub async fn connect_with_timeout(
        addr: impl ToSocketAddrs,
        call_timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let stream = tokio::time::timeout(call_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RegistryError::Timeout)??;
        stream.set_nodelay(true)?;
        let local_addr = stream.local_addr()?;
        let peer_addr = stream.peer_addr()?;
        let (read, write) = stream.into_split();
        let (out, queue) = mpsc::channel(OUT_QUEUE);
        let shared = Arc::new(ClientShared::new(out));

        let writer = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                if let Err(err) = write_loop(write, queue).await {
                    shared.fail_all(err.into());
                }
            })
        };
        let reader = tokio::spawn(read_loop(Arc::clone(&shared), read));
        Ok(Self {
            shared,
            call_timeout,
            local_addr,
            peer_addr,
            tasks: Mutex::new(vec![reader, writer]),
        })
    }

    /// The endpoints of `service` (empty if the server does not know it).
    pub async fn lookup(&self, service: &str) -> Result<Vec<Endpoint>, RegistryError> {
        self.call(Op::Lookup {
            service: service.to_owned(),
        })
        .await
    }

    /// Adds `endpoint` to `service`; the server notifies the service's watchers.
    pub async fn register(&self, service: &str, endpoint: Endpoint) -> Result<(), RegistryError> {
        self.call(Op::Register {
            service: service.to_owned(),
            endpoint,
        })
        .await
    }

    /// Removes `endpoint` from `service`; the server notifies the service's watchers.
    pub async fn deregister(&self, service: &str, endpoint: Endpoint) -> Result<(), RegistryError> {
        self.call(Op::Deregister {
            service: service.to_owned(),
            endpoint,
        })
        .await
    }

    /// Sends `payload` and returns the server's copy of it (a round trip, for benchmarks).
    pub async fn echo(&self, payload: &str) -> Result<String, RegistryError> {
        self.call(Op::Echo {
            payload: payload.to_owned(),
        })
        .await
    }

    /// The server's counters.
    pub async fn stats(&self) -> Result<Stats, RegistryError> {
        self.call(Op::Stats).await
    }

    /// Watches `service`: the stream yields its current value, then its value after every change.
    ///
    /// The server is asked once per service; a second stream of the same service on this
    /// connection starts with the latest value received. Dropping the last stream of a service
    /// sends `unwatch` (best effort). The stream ends when the connection closes.
    pub async fn watch(&self, service: &str) -> Result<WatchStream, RegistryError> {
        let (sub, queue, first) = self.shared.add_sub(service)?;
        let stream = WatchStream::new(Arc::clone(&self.shared), service.to_owned(), sub, queue);
        if first {
            let op = Op::Watch {
                service: service.to_owned(),
            };
            if let Err(err) = self.shared.call(op, self.call_timeout).await {
                self.shared.abandon_watch(service);
                return Err(err);
            }
        }
        Ok(stream)
    }

    /// Whether the connection is closed (by [`close`](Self::close), the server, or an error).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// This side's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Closes the connection: calls in flight fail with [`RegistryError::Closed`], watch streams
    /// end, and the socket is closed when this returns. Idempotent.
    pub async fn close(&self) {
        self.shared.fail_all(RegistryError::Closed);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn call<T: DeserializeOwned>(&self, op: Op) -> Result<T, RegistryError> {
        let raw = self.shared.call(op, self.call_timeout).await?;
        serde_json::from_str(raw.get()).map_err(|err| RegistryError::Protocol(err.to_string()))
    }
}

impl Drop for RegistryConn {
    fn drop(&mut self) {
        self.shared.fail_all(RegistryError::Closed);
        let tasks = self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner);
        for task in tasks.drain(..) {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RegistryConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConn")
            .field("local_addr", &self.local_addr)
            .field("peer_addr", &self.peer_addr)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Routes every line from the server; on the end of the stream, fails everything still waiting.
async fn read_loop(shared: Arc<ClientShared>, read: OwnedReadHalf) {
    let mut lines = LineReader::new(read, MAX_SERVER_LINE_LEN);
    let reason = loop {
        match lines.next_line().await {
            Ok(Some(line)) => match ServerMessage::parse(line) {
                Ok(message) => shared.route(message),
                Err(err) => {
                    tracing::warn!(%err, "registry: bad line from the server; closing");
                    break RegistryError::Protocol(err);
                }
            },
            Ok(None) => break RegistryError::Closed,
            Err(err) => break RegistryError::Io(err.to_string()),
        }
    };
    shared.fail_all(reason);
}
