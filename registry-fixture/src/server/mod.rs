//! The embedded registry server.

mod conn;
mod state;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::protocol::{Endpoint, Stats};
use state::State;

/// What the accept loop and every connection task share.
pub(super) struct Shared {
    state: Mutex<State>,
    /// The number of live connections, for [`RegistryServer::wait_for_live_connections`].
    live: watch::Sender<usize>,
}

impl Shared {
    /// Locks the state. A panic elsewhere never leaves it half-updated in a way that matters
    /// here, so a poisoned lock is used as is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registry server: a TCP listener, one task per connection, and an in-process admin API.
///
/// Dropping it shuts it down, as [`shutdown`](Self::shutdown) does.
pub struct RegistryServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl RegistryServer {
    /// Binds `addr` (`"127.0.0.1:0"` for an ephemeral port) and starts accepting connections.
    /// Must be called within a tokio runtime.
    pub async fn start(addr: impl ToSocketAddrs) -> io::Result<RegistryServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (live, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            live,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%local_addr, "registry: listening");
        Ok(RegistryServer {
            shared,
            local_addr,
            accept,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Replaces the endpoints of `service`, bumps its version and pushes the new value to every
    /// connection that watches it.
    pub fn set(&self, service: &str, endpoints: Vec<Endpoint>) {
        self.shared.state().set(service, endpoints);
    }

    /// The endpoints of `service` (empty if unknown).
    pub fn lookup(&self, service: &str) -> Vec<Endpoint> {
        self.shared.state().lookup(service)
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.state().stats()
    }

    /// Waits until exactly `n` connections are live, at most `timeout`. Returns whether that
    /// happened.
    pub async fn wait_for_live_connections(&self, n: usize, timeout: Duration) -> bool {
        let mut live = self.shared.live.subscribe();
        matches!(
            tokio::time::timeout(timeout, live.wait_for(|count| *count == n)).await,
            Ok(Ok(_))
        )
    }

    /// Stops accepting and closes every connection. Idempotent.
    pub fn shutdown(&self) {
        self.accept.abort();
        self.shared.state().close_all();
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for RegistryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tracing::debug!(%peer, "registry: connection accepted");
                tokio::spawn(conn::serve(Arc::clone(&shared), stream));
            }
            Err(err) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "registry: accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
