//! Method names on the wire: `rename_all` on the trait and `name` on a method give the names
//! another language's processes use (the Node package's are `camelCase`); the Rust names stay.

mod common;

use common::free_port;

use cluster_client::service::MethodKind;
use cluster_client::{Error, Options, cluster_client};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
struct DataError(String);

impl From<Error> for DataError {
    fn from(err: Error) -> Self {
        DataError(err.to_string())
    }
}

#[cluster_client(rename_all = "camelCase")]
trait Data {
    async fn get_data(&self, key: String) -> Result<String, DataError>;

    #[invoke(name = "fetchAll")]
    async fn fetch_everything(&self) -> Result<Vec<String>, DataError>;
}

struct Real;

impl Data for Real {
    async fn get_data(&self, key: String) -> Result<String, DataError> {
        Ok(format!("value of {key}"))
    }

    async fn fetch_everything(&self) -> Result<Vec<String>, DataError> {
        Ok(vec!["a".to_owned(), "b".to_owned()])
    }
}

#[test]
fn the_schema_holds_the_wire_names() {
    let names: Vec<(&str, MethodKind)> = DataClient::SCHEMA
        .methods
        .iter()
        .map(|spec| (spec.name, spec.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("getData", MethodKind::Invoke),
            ("fetchAll", MethodKind::Invoke)
        ]
    );
}

/// A follower's calls reach the leader's real client under the wire names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cross_under_the_wire_names() {
    let options = Options::new("Data").port(free_port());
    let leader = DataClient::create(options.clone(), || async { Ok::<_, DataError>(Real) })
        .await
        .expect("the leader starts");
    let follower = DataClient::create(options, || async { Ok::<_, DataError>(Real) })
        .await
        .expect("the follower joins");
    assert!(leader.is_leader() && !follower.is_leader());
    assert_eq!(
        follower.get_data("k".to_owned()).await.expect("answered"),
        "value of k"
    );
    assert_eq!(
        follower.fetch_everything().await.expect("answered"),
        ["a", "b"]
    );
    follower.close().await;
    leader.close().await;
}
