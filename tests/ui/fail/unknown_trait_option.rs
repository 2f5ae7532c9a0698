use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client(nmae = "registry")]
pub trait Registry {
    async fn lookup(&self, service: String) -> Result<u32, Failure>;
}

fn main() {}
