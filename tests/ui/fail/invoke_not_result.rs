use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, service: String) -> u32;
}

fn main() {}
