//! A trait without methods still gets its client (a channel with nothing to call).

use cluster_client::cluster_client;

#[cluster_client]
pub trait Nothing {}

struct Real;
impl Nothing for Real {}

fn main() {
    assert!(NothingClient::SCHEMA.methods.is_empty());
    let _: &dyn cluster_client::service::Service = &ServeNothing(Real);
}
