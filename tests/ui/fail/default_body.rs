use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, key: String) -> Result<u32, Failure> {
        Ok(key.len() as u32)
    }
}

fn main() {}
