use cluster_client::{Subscription, cluster_client};

pub struct Failure;

#[cluster_client]
pub trait Registry {
    async fn stats(&self, service: String) -> Result<u32, Failure>;
    #[subscribe]
    fn roles(&self, service: String) -> Subscription<u32>;
}

fn main() {}
