//! The "API client over data client" pattern: the generated client is the *data* client (one
//! upstream connection per host, shared by every process); an *API* client wraps it with what each
//! process wants locally, here a cache kept fresh by a subscription and round-robin endpoint picking.
//!
//! ```text
//! cargo run --example api_client
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cluster_client::Options;
use cluster_client_registry_fixture::{Endpoint, RegistryError, RegistryServer};
use cluster_client_workspace::registry_service::{Registry, RegistryClient, UpstreamRegistry};
use futures::StreamExt;

/// Business API over the shared data client.
struct BillingApi {
    data: RegistryClient,
    endpoints: Arc<RwLock<Vec<Endpoint>>>,
    next: AtomicUsize,
}

impl BillingApi {
    /// Joins the cluster (leading it if no process does) and starts following `billing`.
    async fn connect(options: Options, upstream: String) -> Result<Self, cluster_client::Error> {
        let data = RegistryClient::create(options, move || {
            let upstream = upstream.clone();
            async move { UpstreamRegistry::connect(&upstream).await }
        })
        .await?;
        let endpoints = Arc::new(RwLock::new(Vec::new()));
        let mut updates = data.watch("billing".to_owned());
        let cache = Arc::clone(&endpoints);
        tokio::spawn(async move {
            while let Some(latest) = updates.next().await {
                *cache.write().unwrap_or_else(|e| e.into_inner()) = latest;
            }
        });
        Ok(BillingApi {
            data,
            endpoints,
            next: AtomicUsize::new(0),
        })
    }

    /// The next billing endpoint, round robin, from the local cache: no network round trip.
    fn pick(&self) -> Option<Endpoint> {
        let endpoints = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        endpoints.get(n % endpoints.len().max(1)).cloned()
    }

    /// Asks the registry directly (through the leader) when the cache is not enough.
    async fn refresh(&self) -> Result<usize, RegistryError> {
        let latest = self.data.lookup("billing".to_owned()).await?;
        let count = latest.len();
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = latest;
        Ok(count)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `RUST_LOG=cluster_client=debug` shows what the runtime does.
    cluster_client_workspace::log_to_stderr();
    let upstream = RegistryServer::start("127.0.0.1:0").await?;
    upstream.set(
        "billing",
        vec![Endpoint::new("10.0.0.1", 80), Endpoint::new("10.0.0.2", 80)],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let api = BillingApi::connect(
        Options::new("registry").port(port),
        upstream.local_addr().to_string(),
    )
    .await?;

    println!("refresh: {} endpoints", api.refresh().await?);
    let picks: Vec<_> = (0..4)
        .filter_map(|_| api.pick())
        .map(|e| e.to_string())
        .collect();
    println!("round robin: {}", picks.join(", "));

    upstream.set("billing", vec![Endpoint::new("10.0.0.9", 443)]);
    for _ in 0..100 {
        if api.pick().is_some_and(|e| e.host == "10.0.0.9") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = api.pick().ok_or("the cache is empty")?;
    println!("after an upstream change, the cache says: {after}");
    if after.host != "10.0.0.9" {
        return Err("the subscription did not refresh the cache".into());
    }
    api.data.close().await;
    Ok(())
}
