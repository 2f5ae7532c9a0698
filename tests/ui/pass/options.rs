//! `name = ".."` sets the channel; `crate = ".."` reaches the runtime by another path.

use cluster_client as rt;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Failure(String);

impl From<rt::Error> for Failure {
    fn from(error: rt::Error) -> Self {
        Failure(error.to_string())
    }
}

#[rt::cluster_client(name = "config-centre", crate = "crate::rt")]
pub trait Config {
    async fn get(&self, key: String) -> Result<Option<String>, Failure>;
}

fn main() {
    assert_eq!(ConfigClient::SCHEMA.name, "config-centre");
    assert_ne!(ConfigClient::SCHEMA.fingerprint, 0);
}
