//! A leader whose real client is broken for good steps down, with real processes: the upstream
//! registry server is stopped and a new one started on the same address. The leader's real client
//! (`cc-worker --seam resigning`) sees its connection lost and calls `Term::resign`; the leader
//! hands over and the next election builds one new real client, connected to the new server.
//! Calls work again from every process, and the watch streams of every process (the resigning
//! one's too) go on with the new server's value, without ending.

mod support;

use std::time::Duration;

use cluster_client_registry_fixture::RegistryServer;
use serde_json::json;
use support::{Worker, endpoints, endpoints_json, eventually, free_port, live_connections};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_upstream_is_gone_resigns_and_one_new_real_client_is_built() {
    let up = RegistryServer::start("127.0.0.1:0")
        .await
        .expect("upstream starts");
    let address = up.local_addr();
    up.set("svc", endpoints(&[("10.0.0.1", 1)]));
    let port = free_port();
    let mut workers = Vec::new();
    for name in ["a", "b", "c"] {
        let worker = Worker::ready(name, "resigning", port, &up, &[]).await;
        workers.push(worker);
    }
    let (leads, epoch) = workers[0].status().await;
    assert!(leads, "the first worker leads");
    for worker in &mut workers {
        worker
            .send(json!({ "cmd": "watch", "sub": "s", "service": "svc" }))
            .await;
        worker
            .item_eq("s", &endpoints_json(&[("10.0.0.1", 1)]))
            .await;
    }
    live_connections(&up, 1).await;

    // The upstream goes away for good; a new, empty one takes its address.
    up.shutdown();
    drop(up);
    let next = eventually("a new upstream on the same address", || async {
        RegistryServer::start(address).await.ok()
    })
    .await;
    next.set("svc", endpoints(&[("10.0.0.2", 2)]));

    // Everyone moves to a new term, whose leader built a new real client.
    let mut leaders = 0;
    for worker in &mut workers {
        let (leads, term) = worker.new_term(epoch).await;
        assert!(term > epoch, "{}: term {term} after {epoch}", worker.name);
        leaders += usize::from(leads);
    }
    assert_eq!(leaders, 1, "one leader in the new term");
    live_connections(&next, 1).await;
    for worker in &mut workers {
        let answer = worker
            .call(json!({ "cmd": "echo", "payload": worker.name }))
            .await;
        assert_eq!(
            answer["ok"],
            json!(worker.name),
            "{}: {answer}",
            worker.name
        );
        worker
            .item_eq("s", &endpoints_json(&[("10.0.0.2", 2)]))
            .await;
        let ended = worker.take_all(|v| v["sub"] == "s" && v.get("end").is_some());
        assert!(
            ended.is_empty(),
            "{}: the stream ended: {ended:?}",
            worker.name
        );
    }
    // One real client in the new term: the new server saw one connection, with one watch.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = next.stats();
    assert_eq!(stats.total_connections, 1, "{stats:?}");
    assert_eq!(stats.watches.get("svc").copied(), Some(1), "{stats:?}");
}
