//! A `#[cfg]` on a method is copied onto every item generated for it; compiled-out methods vanish
//! from the dispatch, the proxy, the client and the schema.

use cluster_client::cluster_client;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure(String);

impl From<cluster_client::Error> for Failure {
    fn from(error: cluster_client::Error) -> Self {
        Failure(error.to_string())
    }
}

#[cluster_client]
pub trait Feed {
    async fn kept(&self) -> Result<u32, Failure>;
    #[cfg(any())]
    async fn gone(&self, missing: NoSuchType) -> Result<u32, Failure>;
    #[cfg(any())]
    #[subscribe]
    fn gone_stream(&self) -> cluster_client::Subscription<NoSuchType>;
    #[cfg(any())]
    #[close]
    async fn close(&self);
}

struct Real;

impl Feed for Real {
    async fn kept(&self) -> Result<u32, Failure> {
        Ok(1)
    }
}

fn main() {
    assert_eq!(FeedClient::SCHEMA.methods.len(), 1);
    let _: &dyn cluster_client::service::Service = &ServeFeed(Real);
}
