//! Another crate's error type as a method's error (as `redis::RedisError` would be): reported on
//! the type, saying to wrap it in an error type of one's own.

use cluster_client::cluster_client;

#[cluster_client]
pub trait Registry {
    async fn lookup(&self, service: String) -> Result<u32, std::io::Error>;
}

fn main() {}
