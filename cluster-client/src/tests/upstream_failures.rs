//! What a follower sees when the real client's subscription fails: its own error, typed, at
//! subscribe time or at the end; a `resubscribe` topic that goes on; and when a topic is live.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;

use super::duplex::{args, follower_with, leader_of, options, spec};
use super::service::{SCHEMA, TestService};
use crate::error::Error;
use crate::mailbox::Mailbox;
use crate::options::SlowConsumer;
use crate::subscription::Subscription;
use crate::transcode::Codec;

const WAIT: Duration = Duration::from_secs(5);

/// The test service's error type (a `String`), as a method's error type is: `From<Error>` too.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(transparent)]
struct Reason(String);

impl From<Error> for Reason {
    fn from(err: Error) -> Self {
        Reason(format!("runtime: {err}"))
    }
}

/// A follower's subscription of `method` with `key` and framed arguments `app`, as the handle
/// makes one.
async fn subscribe(
    method: &str,
    key: &str,
    app: bytes::Bytes,
) -> (Subscription<u32>, Arc<TestService>) {
    let options = options().resubscribe_backoff(Duration::from_millis(1));
    let service = Arc::new(TestService::default());
    let leader = leader_of(&options, Arc::clone(&service));
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");
    let mailbox = Arc::new(Mailbox::new(
        spec(method).name,
        64,
        SlowConsumer::KeepLatest,
    ));
    follower.subscribe(spec(method), &Arc::from(key), &app, 1, &mailbox);
    // The leader and the connection live as long as the subscription.
    let keep = (leader, follower);
    let subscription = Subscription::remote(mailbox, Codec::default(), move || drop(keep));
    (subscription, service)
}

/// An async subscribe that fails upstream: `ready()` fails with `Error::Upstream`, and the
/// subscriber reads the real client's own error back as its type.
#[tokio::test]
async fn a_failed_upstream_subscribe_reaches_the_follower_as_the_methods_own_error() {
    let key = "$$inner$$__\"news\"";
    let (mut subscription, _) = subscribe("refused", key, args(("news".to_owned(),))).await;
    let ready = tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("no hang");
    assert!(
        matches!(&ready, Err(Error::Upstream { message, .. }) if message == "no topic news"),
        "{ready:?}"
    );
    assert_eq!(subscription.next().await, None);
    assert_eq!(
        subscription.error::<Reason>().map(|r| r.0).as_deref(),
        Some("no topic news")
    );
}

/// A stream that ends with the real client's error: the follower gets the items, then the end,
/// with the error typed.
#[tokio::test]
async fn a_stream_ends_with_the_real_clients_typed_reason() {
    let (mut subscription, _) = subscribe("doomed", "$$inner$$__null", bytes::Bytes::new()).await;
    tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("no hang")
        .expect("live");
    let items: Vec<u32> = tokio::time::timeout(WAIT, subscription.by_ref().collect())
        .await
        .expect("ends");
    assert_eq!(items, [1]);
    assert_eq!(
        subscription.error::<Reason>().map(|r| r.0).as_deref(),
        Some("gone for good")
    );
    assert_eq!(
        subscription.close_reason().map(|e| e.kind()),
        Some(crate::ErrorKind::Upstream)
    );
}

/// A `resubscribe` topic whose stream fails is subscribed again, and the follower's stream goes
/// on through every failure: items of three upstream subscriptions, one after the other, and no
/// end.
#[tokio::test]
async fn a_resubscribe_topic_goes_on_through_upstream_failures() {
    let (mut subscription, service) =
        subscribe("flaky", "$$inner$$__null", bytes::Bytes::new()).await;
    tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("no hang")
        .expect("live");
    let mut items = Vec::new();
    while items.len() < 6 {
        let item = tokio::time::timeout(WAIT, subscription.next())
            .await
            .expect("no hang");
        items.push(item.expect("the stream goes on"));
    }
    assert_eq!(items, [0, 1, 10, 11, 20, 21]);
    assert!(subscription.close_reason().is_none());
    assert!(service.flaky_starts.load(Ordering::SeqCst) >= 3);
}

/// A subscription the leader refuses (here: arguments that do not decode) fails `ready()` with
/// the refusal, rather than waiting.
#[tokio::test]
async fn a_refused_subscription_is_never_ready() {
    let (mut subscription, _) = subscribe("doomed", "$$inner$$__1", bytes::Bytes::new()).await;
    let ready = tokio::time::timeout(WAIT, subscription.ready())
        .await
        .expect("no hang");
    assert!(
        matches!(&ready, Err(Error::SubscriptionEnded { reason, .. }) if reason.contains("do not decode")),
        "{ready:?}"
    );
}
