//! The leader keys a follower's subscription by its decoded arguments: the key on the wire is only
//! a label, and one that is not the arguments' key is refused. Before, a follower that subscribed
//! with key `"billing"` and argument `"evil"` made every later `watch("billing")` receive the items
//! of `"evil"`.

use bytes::BytesMut;
use cluster_client::protocol::ConnObject;
use serde_json::json;

use super::procfs::{PeakRss, vm_rss_kib};
use super::raw::{Raw, push, watch_packet};
use super::support::{WAIT, Worker, endpoints, endpoints_json, free_port, upstream};
use super::{
    SEAM, SLACK, assert_no_panics, assert_rss_within, assert_spin_clean, start_spin, stop_spin,
};

/// What the leader's RSS may grow by while it refuses one forged subscription.
const RSS_MARGIN_KIB: u64 = 8 * 1024;

/// A follower that subscribes with key `"billing"` and argument `"evil"` is refused (no upstream
/// watch of either is opened for it), and another follower's `watch("billing")` then gets billing's
/// endpoints, as does the leader's own. Prints `WHY 6` with the refusal, what the other follower's
/// watch got, the leader's RSS before / peak / after and the other follower's spin meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_key_that_is_not_its_arguments_is_refused() {
    let up = upstream().await;
    up.set("billing", endpoints(&[("10.0.0.1", 80)]));
    up.set("evil", endpoints(&[("6.6.6.6", 666)]));
    let port = free_port();
    let mut leader = Worker::ready("leader", SEAM, port, &up, &["--log", "warn"]).await;
    assert!(leader.status().await.0);
    let mut follower = Worker::ready("follower", SEAM, port, &up, &[]).await;
    start_spin(&mut follower, 61, 1, 3000 + SLACK.as_millis() as u64).await;
    let rss_before = vm_rss_kib(leader.pid);
    let peak = PeakRss::start(leader.pid);

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
    assert!(reason.contains("is not its arguments'"), "{reason}");
    let upstream_watches = up.stats().watches;

    // An honest follower's watch("billing") gets billing's endpoints, not evil's.
    follower
        .send(json!({ "cmd": "watch", "sub": "b", "service": "billing" }))
        .await;
    let got = follower.item("b").await;
    // And so does the leader's own.
    leader
        .send(json!({ "cmd": "watch", "sub": "b", "service": "billing" }))
        .await;
    let leader_got = leader.item("b").await;
    let rss_peak = peak.stop().await;
    let rss_after = vm_rss_kib(leader.pid);
    let totals = stop_spin(&mut follower, 61).await;
    eprintln!(
        "WHY 6: a registered connection subscribes watch with key \"billing\" and argument \
         \"evil\": refused with \"{reason}\" (upstream watches after it: {upstream_watches:?}); \
         the other follower's watch(\"billing\") then got {got}, the leader's own {leader_got}; \
         leader VmRSS {rss_before} before / {} peak ({} samples) / {rss_after} after KiB \
         (bound: peak < before + {RSS_MARGIN_KIB} KiB); the other follower's spin meanwhile: \
         {totals}",
        rss_peak.kib, rss_peak.samples
    );
    assert!(
        !upstream_watches.contains_key("evil") && !upstream_watches.contains_key("billing"),
        "no upstream watch for a refused subscription: {upstream_watches:?}"
    );
    assert_eq!(got, endpoints_json(&[("10.0.0.1", 80)]));
    assert_eq!(leader_got, endpoints_json(&[("10.0.0.1", 80)]));
    assert_rss_within(rss_before, &rss_peak, RSS_MARGIN_KIB);
    assert_spin_clean(&totals);
    assert_no_panics(&mut [&mut leader, &mut follower]);
}
