//! The expansion is warning-free under strict lints, and documents every public item it adds.

#![deny(
    warnings,
    missing_docs,
    unused,
    rust_2018_idioms,
    unreachable_pub,
    missing_debug_implementations
)]

//! A documented crate.

use cluster_client::{Subscription, cluster_client};

/// The error.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure(pub String);

impl From<cluster_client::Error> for Failure {
    fn from(error: cluster_client::Error) -> Self {
        Failure(error.to_string())
    }
}

/// A documented trait.
#[cluster_client]
pub trait Strict {
    /// An invoke.
    async fn get(&self, key: String) -> Result<u32, Failure>;
    /// A oneway.
    #[oneway]
    async fn put(&self, key: String, value: u32);
    /// A subscription.
    #[subscribe]
    fn watch(&self, key: String) -> Subscription<u32>;
    /// A publish.
    #[publish]
    async fn announce(&self, who: String);
    /// Close.
    #[close]
    async fn close(&self);
    /// Deprecated: the generated forwarding does not warn.
    #[deprecated = "use get"]
    async fn old_get(&self, key: String) -> Result<u32, Failure>;
}

fn main() {}
