use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, (a, b): (u8, u32)) -> Result<u32, Failure>;
}

fn main() {}
