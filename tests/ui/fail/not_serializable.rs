//! A type that cannot cross the wire: the error points at it.

use cluster_client::cluster_client;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure;

impl From<cluster_client::Error> for Failure {
    fn from(_: cluster_client::Error) -> Self {
        Failure
    }
}

pub struct Endpoint {
    pub host: String,
}

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, service: String) -> Result<Vec<Endpoint>, Failure>;
}

fn main() {}
