//! An invoke's error type must carry transport failures: the error points at it.

use cluster_client::cluster_client;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, service: String) -> Result<u32, Failure>;
}

fn main() {}
