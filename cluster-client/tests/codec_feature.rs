//! The default codec is the same in every build, and `create()` names the feature of a codec that
//! is not compiled in. CI runs this file with default features and again with
//! `--no-default-features`.

mod common;

use common::free_port;

use cluster_client::transcode::{CodecError, Transcode};
use cluster_client::{Codec, Error, Options, cluster_client};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
struct PingError(String);

impl From<Error> for PingError {
    fn from(err: Error) -> Self {
        PingError(err.to_string())
    }
}

#[cluster_client]
trait Ping {
    async fn ping(&self) -> Result<u32, PingError>;
}

struct Real;

impl Ping for Real {
    async fn ping(&self) -> Result<u32, PingError> {
        Ok(7)
    }
}

async fn create(codec: Codec) -> Result<PingClient, Error> {
    let options = Options::new("Ping").port(free_port()).codec(codec);
    PingClient::create(options, || async { Ok::<_, PingError>(Real) }).await
}

#[tokio::test]
async fn create_names_the_feature_of_a_codec_left_out() {
    assert_eq!(
        Options::default().codec,
        Codec::Bincode,
        "the same in every build"
    );
    for (codec, on) in [
        (Codec::Bincode, cfg!(feature = "bincode")),
        (Codec::Postcard, cfg!(feature = "postcard")),
        (Codec::Json, true),
    ] {
        match create(codec).await {
            Ok(client) if on => {
                assert!(client.is_leader());
                assert_eq!(client.ping().await.expect("served"), 7, "{codec}");
            }
            Err(Error::Codec(CodecError::Unavailable {
                codec: name,
                feature,
            })) if !on => {
                assert_eq!((name, feature), (codec.name(), codec.name()));
            }
            Ok(_) => panic!("{codec}: created without its feature"),
            Err(err) => panic!("{codec}: {err}"),
        }
    }
}
