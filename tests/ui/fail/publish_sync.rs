use cluster_client::cluster_client;

pub struct Failure;

#[cluster_client]
pub trait Registry {
    #[publish]
    fn register(&self, me: String);
}

fn main() {}
