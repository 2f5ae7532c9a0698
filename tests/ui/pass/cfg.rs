//! A `#[cfg]` on a method is copied onto every item generated for it; compiled-out methods vanish
//! from the dispatch, the client and the schema, and every client method still passes its own schema
//! entry (the index counts only the methods compiled in before it).

use cluster_client::{Options, cluster_client};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure(String);

impl From<cluster_client::Error> for Failure {
    fn from(error: cluster_client::Error) -> Self {
        Failure(error.to_string())
    }
}

#[cluster_client]
pub trait Feed {
    #[cfg(any())]
    async fn gone(&self, missing: NoSuchType) -> Result<u32, Failure>;
    async fn kept(&self) -> Result<u32, Failure>;
    #[cfg(all())]
    async fn present(&self, n: u32) -> Result<u32, Failure>;
    #[cfg(any())]
    #[subscribe]
    fn gone_stream(&self) -> cluster_client::Subscription<NoSuchType>;
    async fn last(&self) -> Result<u32, Failure>;
    #[cfg(any())]
    #[close]
    async fn close(&self);
}

struct Real;

impl Feed for Real {
    async fn kept(&self) -> Result<u32, Failure> {
        Ok(1)
    }
    async fn present(&self, n: u32) -> Result<u32, Failure> {
        Ok(n)
    }
    async fn last(&self) -> Result<u32, Failure> {
        Ok(3)
    }
}

fn main() {
    assert_eq!(FeedClient::SCHEMA.methods.len(), 3);
    let _: &dyn cluster_client::service::Service = &ServeFeed(Real);
    // In single mode each call runs the method its spec names: a wrong index would run another one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let options = Options::new("cfg").single_mode(true);
        let feed = FeedClient::create(options, || async { Ok::<_, std::io::Error>(Real) })
            .await
            .expect("a single-mode client");
        assert_eq!(feed.kept().await.ok(), Some(1));
        assert_eq!(feed.present(2).await.ok(), Some(2));
        assert_eq!(feed.last().await.ok(), Some(3));
        feed.close().await;
    });
}
