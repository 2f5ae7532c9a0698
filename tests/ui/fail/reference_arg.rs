use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, service: &str) -> Result<u32, Failure>;
}

fn main() {}
