//! Every independent mistake is reported in one compile, and the trait is still emitted: the
//! implementation below compiles, so nothing cascades from the errors.

use cluster_client::{Subscription, cluster_client};

pub struct Failure;

#[cluster_client(name = "")]
pub trait Registry {
    async fn lookup(&mut self, service: String) -> Result<u32, Failure>;
    #[oneway(idempotent)]
    async fn report(&self, hits: u32);
    #[subscribe]
    fn watch(&self, (a, b): (String, u8)) -> Vec<u32>;
    #[invoke(timeout_ms = 0)]
    async fn count(&self) -> Result<u32, Failure>;
    fn epoch(&self) -> Subscription<u64>;
}

struct Real;

impl Registry for Real {
    async fn lookup(&mut self, _service: String) -> Result<u32, Failure> {
        Ok(0)
    }
    async fn report(&self, _hits: u32) {}
    fn watch(&self, _: (String, u8)) -> Vec<u32> {
        Vec::new()
    }
    async fn count(&self) -> Result<u32, Failure> {
        Ok(0)
    }
    fn epoch(&self) -> Subscription<u64> {
        Subscription::from_stream(futures::stream::empty())
    }
}

fn main() {
    let _ = Real;
}
