use cluster_client::cluster_client;

#[cluster_client]
pub trait Registry {
    async fn close(&self);
}

fn main() {}
