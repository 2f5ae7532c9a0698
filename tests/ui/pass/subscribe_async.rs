//! An `async` subscribe returning `Result<Subscription<T>, E>`, with `resubscribe`, next to a
//! plain one: both compile, on the real client and on the generated client.

use cluster_client::{Subscription, cluster_client};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("cluster: {0}")]
    Cluster(String),
}

impl From<cluster_client::Error> for Failure {
    fn from(err: cluster_client::Error) -> Self {
        Failure::Cluster(err.to_string())
    }
}

#[cluster_client]
pub trait Feed {
    #[subscribe(resubscribe)]
    async fn messages(&self, channel: String) -> Result<Subscription<String>, Failure>;

    #[subscribe]
    fn ticks(&self) -> Subscription<u64>;
}

struct Real;

impl Feed for Real {
    async fn messages(&self, channel: String) -> Result<Subscription<String>, Failure> {
        if channel.is_empty() {
            return Err(Failure::Upstream("no channel".into()));
        }
        let items = futures::stream::iter([Ok(channel), Err(Failure::Upstream("reset".into()))]);
        Ok(Subscription::from_try_stream(items))
    }

    fn ticks(&self) -> Subscription<u64> {
        Subscription::from_future(async { Ok::<_, Failure>(Subscription::from_stream(futures::stream::iter([1u64]))) })
    }
}

#[allow(dead_code)]
async fn use_it(client: &FeedClient) -> Result<(), Failure> {
    let _messages: Subscription<String> = client.messages("news".into()).await?;
    let _ticks: Subscription<u64> = client.ticks();
    let _real = Real.messages("news".into()).await?;
    Ok(())
}

fn main() {}
