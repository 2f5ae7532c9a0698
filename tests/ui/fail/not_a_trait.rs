use cluster_client::cluster_client;

#[cluster_client]
pub struct Registry {
    pub endpoints: Vec<String>,
}

fn main() {}
