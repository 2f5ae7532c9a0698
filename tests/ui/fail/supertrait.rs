use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry: Send + Sync {
    async fn lookup(&self, key: String) -> Result<u32, Failure>;
}

fn main() {}
