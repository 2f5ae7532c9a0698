use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[close]
    async fn close(&self, force: bool);
}

fn main() {}
