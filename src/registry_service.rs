//! The test service: the `Registry` trait that the demo, the end-to-end tests and the worker
//! process share, under `#[cluster_client]`, and its real client: one connection to the toy
//! upstream registry server (`cluster-client-registry-fixture`).

use std::sync::Arc;
use std::time::Duration;

use cluster_client::{Subscription, Term, cluster_client};
use cluster_client_registry_fixture::{Endpoint, RegistryConn, RegistryError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// A service registry, shared by the processes of one host.
#[cluster_client(name = "registry")]
pub trait Registry {
    /// The endpoints of `service`.
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError>;

    /// Echoes `payload` through the upstream server (safe to retry after a failover).
    #[invoke(idempotent)]
    async fn echo(&self, payload: String) -> Result<String, RegistryError>;

    /// Sleeps `ms` milliseconds in the leader, then returns them (no upstream traffic).
    #[invoke(timeout_ms = 1000)]
    async fn pause(&self, ms: u64) -> Result<u64, RegistryError>;

    /// Records a note upstream as an endpoint of the service `reports` (fire and forget).
    #[oneway]
    async fn report(&self, note: String);

    /// Every version of the endpoints of `service`, starting with the current one. When the
    /// upstream watch fails, the leader watches again (with backoff) and the streams go on.
    #[subscribe(resubscribe)]
    fn watch(&self, service: String) -> Subscription<Vec<Endpoint>>;

    /// Like `watch`, but each version goes to one subscriber only: a work queue.
    #[subscribe(broadcast = false)]
    fn jobs(&self, queue: String) -> Subscription<Vec<Endpoint>>;

    /// Registers an endpoint under a service; re-registered on every new leader. One argument, as
    /// the Node package's `publish(reg)` sends it.
    #[publish]
    async fn register(&self, registration: Registration);

    /// Closes the upstream connection.
    #[close]
    async fn close(&self);
}

// `RegistryError: From<cluster_client::Error>` comes from the fixture's `cluster-client` feature.

/// An endpoint to register under a service: the argument of [`Registry::register`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The service's name.
    pub service: String,
    /// The endpoint to add to it.
    pub endpoint: Endpoint,
}

impl Registration {
    /// `endpoint` under `service`.
    pub fn new(service: impl Into<String>, endpoint: Endpoint) -> Self {
        Registration {
            service: service.into(),
            endpoint,
        }
    }
}

/// The real client: one connection to the upstream registry.
#[derive(Debug)]
pub struct UpstreamRegistry {
    conn: Arc<RegistryConn>,
}

/// How often a resigning real client looks at its upstream connection.
const UPSTREAM_CHECK: Duration = Duration::from_millis(20);

impl UpstreamRegistry {
    /// Connects to the upstream registry at `addr`.
    pub async fn connect(addr: &str) -> Result<Self, RegistryError> {
        Ok(UpstreamRegistry {
            conn: Arc::new(RegistryConn::connect(addr).await?),
        })
    }

    /// Connects for the leader's `term`, and resigns it when the upstream connection is lost:
    /// the next election (in whichever process wins it) connects again.
    pub async fn connect_resigning(addr: &str, term: Term) -> Result<Self, RegistryError> {
        let client = Self::connect(addr).await?;
        let conn = Arc::clone(&client.conn);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = term.over() => return,
                    () = tokio::time::sleep(UPSTREAM_CHECK) => {}
                }
                if conn.is_closed() {
                    tracing::warn!(
                        epoch = term.epoch(),
                        "the upstream connection is lost; resigning"
                    );
                    term.resign();
                    return;
                }
            }
        });
        Ok(client)
    }
}

impl Registry for UpstreamRegistry {
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError> {
        self.conn.lookup(&service).await
    }

    async fn echo(&self, payload: String) -> Result<String, RegistryError> {
        self.conn.echo(&payload).await
    }

    async fn pause(&self, ms: u64) -> Result<u64, RegistryError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    async fn report(&self, note: String) {
        if let Err(err) = self.conn.register("reports", Endpoint::new(note, 0)).await {
            tracing::warn!(error = %err, "report failed upstream");
        }
    }

    fn watch(&self, service: String) -> Subscription<Vec<Endpoint>> {
        let conn = Arc::clone(&self.conn);
        // Live once the upstream watch is open; closed when the subscription is dropped. The
        // stream ends only with the connection: that is a failure, for the leader to watch again.
        Subscription::from_future(async move {
            let updates = conn.watch(&service).await?;
            let closed = futures::stream::once(async { Err(RegistryError::Closed) });
            Ok::<_, RegistryError>(Subscription::from_try_stream(updates.map(Ok).chain(closed)))
        })
    }

    fn jobs(&self, queue: String) -> Subscription<Vec<Endpoint>> {
        self.watch(queue)
    }

    async fn register(&self, registration: Registration) {
        let Registration { service, endpoint } = registration;
        if let Err(err) = self.conn.register(&service, endpoint).await {
            tracing::warn!(error = %err, "register failed upstream");
        }
    }

    async fn close(&self) {
        self.conn.close().await;
    }
}
