use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn create(&self, service: String) -> Result<u32, Failure>;
}

fn main() {}
