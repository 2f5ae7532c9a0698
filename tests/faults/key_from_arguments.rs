//! The leader keys a follower's subscription by its decoded arguments: the key on the wire is only
//! a label, and one that is not the arguments' key is refused. Before, a follower that subscribed
//! with key `"billing"` and argument `"evil"` made every later `watch("billing")` receive the items
//! of `"evil"`.

use bytes::BytesMut;
use cluster_client::protocol::ConnObject;
use serde_json::json;

use super::raw::{Raw, push, watch_packet};
use super::support::{WAIT, Worker, endpoints, endpoints_json, free_port, upstream};
use super::{SEAM, assert_no_panics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_key_that_is_not_its_arguments_is_refused() {
    let up = upstream().await;
    up.set("billing", endpoints(&[("10.0.0.1", 80)]));
    up.set("evil", endpoints(&[("6.6.6.6", 666)]));
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    assert!(leader.status().await.0);

    // The key says "billing"; the argument says "evil".
    let mut raw = Raw::registered(port, "registry").await;
    let mut forged = watch_packet(7, "billing", true);
    let mut evil = BytesMut::new();
    push(&mut evil, &"evil".to_owned());
    forged.app = evil.freeze();
    raw.send_packet(&forged).await;
    let mut kept = Vec::new();
    let end = raw
        .wait_for(WAIT, &mut kept, |p| {
            matches!(&p.conn, ConnObject::SubscribeResult(_))
        })
        .await;
    let ConnObject::SubscribeResult(result) = &end.conn else {
        unreachable!("matched above")
    };
    let reason = result
        .end
        .clone()
        .expect("the subscription is refused, not served");
    eprintln!("a forged key: {reason}");
    assert!(reason.contains("is not its arguments'"), "{reason}");

    // An honest follower's watch("billing") gets billing's endpoints, not evil's.
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    follower
        .send(json!({ "cmd": "watch", "sub": "b", "service": "billing" }))
        .await;
    assert_eq!(
        follower.item("b").await,
        endpoints_json(&[("10.0.0.1", 80)])
    );
    // And so does the leader's own.
    leader
        .send(json!({ "cmd": "watch", "sub": "b", "service": "billing" }))
        .await;
    assert_eq!(leader.item("b").await, endpoints_json(&[("10.0.0.1", 80)]));
    assert_no_panics(&mut [&mut leader, &mut follower]);
}
