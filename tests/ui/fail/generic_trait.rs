use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry<K> {
    async fn lookup(&self, key: K) -> Result<u32, Failure>;
}

fn main() {}
