use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[subscribe]
    fn watch(&self, service: String) -> Vec<u32>;
}

fn main() {}
