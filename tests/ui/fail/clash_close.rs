use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[oneway]
    async fn close(&self);
}

fn main() {}
