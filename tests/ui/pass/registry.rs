//! The trait of DESIGN §2, every kind of method, with a real client behind it.

use cluster_client::{Options, Subscription, cluster_client};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot(pub Vec<Endpoint>);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job(pub u64);

#[derive(Debug, Serialize, Deserialize)]
pub enum RegistryError {
    Upstream(String),
    Cluster(String),
}

impl From<cluster_client::Error> for RegistryError {
    fn from(error: cluster_client::Error) -> Self {
        RegistryError::Cluster(error.to_string())
    }
}

/// A service registry shared by the processes of one host.
#[cluster_client]
pub trait Registry {
    /// Request and response.
    #[invoke]
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError>;
    #[invoke(timeout_ms = 10_000)]
    async fn snapshot(&self) -> Result<Snapshot, RegistryError>;
    #[invoke(idempotent)]
    async fn get(&self, k: String) -> Result<u64, RegistryError>;
    async fn untagged(&self, a: u32, b: u32) -> Result<u32, RegistryError>;
    #[oneway]
    async fn report(&self, stats: Stats);
    #[subscribe]
    fn watch(&self, service: String) -> Subscription<Vec<Endpoint>>;
    #[subscribe(broadcast = false)]
    fn work(&self, queue: String) -> Subscription<Job>;
    #[publish]
    async fn register(&self, me: Endpoint);
    #[close]
    async fn close(&self);
}

/// The real client, written with `async fn`.
struct ZkRegistry;

impl Registry for ZkRegistry {
    async fn lookup(&self, _service: String) -> Result<Vec<Endpoint>, RegistryError> {
        Ok(Vec::new())
    }
    async fn snapshot(&self) -> Result<Snapshot, RegistryError> {
        Ok(Snapshot(Vec::new()))
    }
    async fn get(&self, _k: String) -> Result<u64, RegistryError> {
        Err(RegistryError::Upstream("no".into()))
    }
    async fn untagged(&self, a: u32, b: u32) -> Result<u32, RegistryError> {
        Ok(a + b)
    }
    async fn report(&self, _stats: Stats) {}
    fn watch(&self, _service: String) -> Subscription<Vec<Endpoint>> {
        Subscription::from_stream(futures::stream::empty())
    }
    fn work(&self, _queue: String) -> Subscription<Job> {
        Subscription::from_stream(futures::stream::iter([Job(1)]))
    }
    async fn register(&self, _me: Endpoint) {}
    async fn close(&self) {}
}

/// Code written against `impl Registry` runs on the real client and on the handle alike.
async fn first(registry: &impl Registry) -> Option<Endpoint> {
    registry
        .lookup("billing".into())
        .await
        .ok()?
        .into_iter()
        .next()
}

#[allow(dead_code)]
async fn usage() -> Result<(), cluster_client::Error> {
    let registry = RegistryClient::create(Options::new("registry").port(7777), || async {
        Ok::<_, std::io::Error>(ZkRegistry)
    })
    .await?;
    let _ = first(&registry).await;
    let _ = first(&ZkRegistry).await;
    let _updates: Subscription<Vec<Endpoint>> = registry.watch("billing".into());
    let _leads: bool = registry.is_leader();
    let _term: u64 = registry.epoch();
    // A method future is `Send + 'static` once it owns the client: it can be spawned.
    let clone = registry.clone();
    tokio::spawn(async move { clone.snapshot().await.is_ok() });
    registry.close().await;
    Ok(())
}

fn main() {
    let schema = RegistryClient::SCHEMA;
    assert_eq!(schema.name, "Registry");
    assert_eq!(schema.methods.len(), 9);
    assert_eq!(
        schema.method("snapshot").and_then(|m| m.timeout_ms),
        Some(10_000)
    );
    assert!(schema.method("get").is_some_and(|m| m.idempotent));
    assert!(schema.method("work").is_some_and(|m| !m.broadcast));
    let _dispatch: &dyn cluster_client::service::Service = &ServeRegistry(ZkRegistry);
}
