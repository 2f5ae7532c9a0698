use cluster_client::{Subscription, cluster_client};

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[subscribe]
    async fn watch(&self, service: String) -> Subscription<u32>;
}

fn main() {}
