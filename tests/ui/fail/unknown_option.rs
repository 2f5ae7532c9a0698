use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[invoke(timeout = 5_000)]
    async fn lookup(&self, service: String) -> Result<u32, Failure>;
}

fn main() {}
