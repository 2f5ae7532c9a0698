use cluster_client::{Subscription, cluster_client};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    #[error("cluster: {0}")]
    Cluster(String),
}

impl From<cluster_client::Error> for Failure {
    fn from(err: cluster_client::Error) -> Self {
        Failure::Cluster(err.to_string())
    }
}

#[cluster_client]
pub trait Registry {
    #[subscribe]
    fn watch(&self, service: String) -> Result<Subscription<u32>, Failure>;
}

fn main() {}
