//! The generated items take the trait's visibility; a private trait in a module works.

mod inner {
    use cluster_client::cluster_client;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub struct Failure;

    impl From<cluster_client::Error> for Failure {
        fn from(_: cluster_client::Error) -> Self {
            Failure
        }
    }

    #[cluster_client]
    pub(crate) trait Counter {
        async fn next(&self) -> Result<u64, Failure>;
    }

    #[cluster_client]
    trait Private {
        #[oneway]
        async fn poke(&self);
    }

    pub(crate) fn private_schema() -> &'static cluster_client::service::Schema {
        PrivateClient::SCHEMA
    }
}

fn main() {
    assert_eq!(inner::CounterClient::SCHEMA.name, "Counter");
    assert_eq!(inner::private_schema().name, "Private");
}
