use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[invoke(timeout_ms = 1_000, timeout_ms = 2_000)]
    async fn lookup(&self, service: String) -> Result<u32, Failure>;
}

fn main() {}
