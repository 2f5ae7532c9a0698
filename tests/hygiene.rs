//! The expansion of `#[cluster_client]` under `#![no_implicit_prelude]`, with the runtime reached under
//! another name through the `crate = ".."` option: every path the macro generates must be absolute and
//! go through that option. (That no generated token names `cluster_client` when the option is set is
//! asserted by the derive crate's unit tests; here the renamed expansion must compile and work.)
//!
//! The test then drives the generated code against the real runtime: a leader and a follower of the
//! same channel in this process, each kind of method called through the follower's client, so the
//! generated dispatch (`ServeRegistry`) answers over loopback.

extern crate cluster_client as renamed_runtime;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cluster_client_workspace::free_port;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum RegistryError {
    NotFound(String),
    Transport(String),
}

impl From<renamed_runtime::Error> for RegistryError {
    fn from(error: renamed_runtime::Error) -> Self {
        RegistryError::Transport(error.to_string())
    }
}

mod hygienic {
    #![no_implicit_prelude]
    #![deny(missing_docs, unused, warnings)]

    use super::{Endpoint, RegistryError};

    /// A registry, expanded with no prelude and the runtime under another name.
    #[::renamed_runtime::cluster_client(crate = "::renamed_runtime", name = "hygiene")]
    pub trait Registry {
        /// Request and response.
        #[invoke]
        async fn lookup(
            &self,
            service: ::std::string::String,
        ) -> ::core::result::Result<::std::vec::Vec<Endpoint>, RegistryError>;
        /// Compiled out: no generated item may mention it, and every method after it still passes
        /// its own schema entry.
        #[cfg(any())]
        async fn hidden(&self) -> ::core::result::Result<u32, RegistryError>;
        /// Own deadline, retried after a failover.
        #[invoke(timeout_ms = 2_000, idempotent)]
        async fn count(&self) -> ::core::result::Result<u32, RegistryError>;
        /// Untagged: an invoke of two arguments.
        async fn add(&self, a: u32, b: u32) -> ::core::result::Result<u32, RegistryError>;
        /// Fire and forget.
        #[oneway]
        async fn report(&self, hits: u32);
        /// A stream of endpoints.
        #[subscribe]
        fn watch(
            &self,
            service: ::std::string::String,
        ) -> ::renamed_runtime::Subscription<::std::vec::Vec<Endpoint>>;
        /// One subscriber per item.
        #[subscribe(broadcast = false)]
        fn work(&self, queue: ::std::string::String) -> ::renamed_runtime::Subscription<u32>;
        /// Remembered and re-published.
        #[publish]
        async fn register(&self, me: Endpoint);
        /// Called at shutdown.
        #[close]
        async fn close(&self);
    }
}

use hygienic::{Registry, RegistryClient, ServeRegistry};

/// The real client: counts what it is asked.
#[derive(Default)]
struct Real {
    reports: AtomicU32,
    registered: AtomicU32,
}

impl Registry for Arc<Real> {
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, RegistryError> {
        match service.as_str() {
            "billing" => Ok(vec![Endpoint {
                host: "10.0.0.1".into(),
                port: 8080,
            }]),
            _ => Err(RegistryError::NotFound(service)),
        }
    }

    async fn count(&self) -> Result<u32, RegistryError> {
        Ok(self.reports.load(Ordering::SeqCst) + self.registered.load(Ordering::SeqCst))
    }

    async fn add(&self, a: u32, b: u32) -> Result<u32, RegistryError> {
        Ok(a + b)
    }

    async fn report(&self, hits: u32) {
        self.reports.fetch_add(hits, Ordering::SeqCst);
    }

    fn watch(&self, service: String) -> renamed_runtime::Subscription<Vec<Endpoint>> {
        let port = u16::try_from(service.len()).unwrap_or(0);
        renamed_runtime::Subscription::from_stream(futures::stream::iter([vec![Endpoint {
            host: service,
            port,
        }]]))
    }

    fn work(&self, _queue: String) -> renamed_runtime::Subscription<u32> {
        renamed_runtime::Subscription::from_stream(futures::stream::iter([1, 2, 3]))
    }

    async fn register(&self, _me: Endpoint) {
        self.registered.fetch_add(1, Ordering::SeqCst);
    }

    async fn close(&self) {}
}

/// What the generated items must be, checked at compile time.
#[allow(dead_code)]
fn generated_items_have_the_promised_traits() {
    fn service<S: renamed_runtime::__private::Service>() {}
    fn shared<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    service::<ServeRegistry<Arc<Real>>>();
    shared::<RegistryClient>();
    let _ = |client: RegistryClient| spawnable(async move { client.lookup("x".into()).await });
    let _ = |client: RegistryClient| spawnable(async move { client.report(1).await });
}

#[test]
fn schema_describes_the_trait() {
    let schema = RegistryClient::SCHEMA;
    assert_eq!(schema.name, "hygiene");
    assert_ne!(schema.fingerprint, 0);
    let names: Vec<_> = schema
        .methods
        .iter()
        .map(|m| (m.name, m.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("lookup", "invoke"),
            ("count", "invoke"),
            ("add", "invoke"),
            ("report", "oneway"),
            ("watch", "subscribe"),
            ("work", "subscribe"),
            ("register", "publish"),
            ("close", "close"),
        ]
    );
    let count = schema.method("count").expect("count");
    assert_eq!((count.timeout_ms, count.idempotent), (Some(2_000), true));
    assert!(!schema.method("work").expect("work").broadcast);
    assert!(schema.method("watch").expect("watch").broadcast);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_round_trips_through_the_generated_code() {
    tokio::time::timeout(Duration::from_secs(20), round_trip())
        .await
        .expect("the round trip finished in time");
}

async fn round_trip() {
    let options = renamed_runtime::Options::default()
        .port(free_port())
        .response_timeout(Duration::from_secs(5));
    let real = Arc::new(Real::default());
    let factory = {
        let real = real.clone();
        move || {
            let real = real.clone();
            async move { Ok::<_, std::convert::Infallible>(real) }
        }
    };
    let leader = RegistryClient::create(options.clone(), factory.clone())
        .await
        .expect("leader");
    assert!(leader.is_leader());
    // A second handle of the same channel in the same process is a follower of this one.
    let follower = RegistryClient::create(options, factory)
        .await
        .expect("follower");
    assert!(!follower.is_leader());

    let found = follower.lookup("billing".into()).await.expect("lookup");
    assert_eq!(found[0].port, 8080);
    assert_eq!(
        follower.lookup("nope".into()).await,
        Err(RegistryError::NotFound("nope".into()))
    );
    assert_eq!(follower.add(2, 3).await, Ok(5));

    follower.report(4).await;
    follower
        .register(Endpoint {
            host: "me".into(),
            port: 1,
        })
        .await;
    // Oneway and publish have no answer: wait until the real client has seen both.
    while follower.count().await != Ok(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut watch = follower.watch("abc".into());
    let first = watch.next().await.expect("an item");
    assert_eq!(
        first,
        vec![Endpoint {
            host: "abc".into(),
            port: 3
        }]
    );
    let mut work = follower.work("q".into());
    assert_eq!(work.next().await, Some(1));

    // The trait's `#[close]` method closes the follower's handle; the leader closes by the inherent one.
    Registry::close(&follower).await;
    assert!(follower.lookup("billing".into()).await.is_err());
    leader.close().await;
}
