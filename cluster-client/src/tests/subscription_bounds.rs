//! What a follower's subscriptions may make a leader hold: keys up to `max_key_len`, topics up to
//! `max_topics`; past either, that subscription is refused with a typed reason and the leader
//! serves on. Before, 150 subscribes with 7 MiB keys held 1.1 GiB.

use std::sync::Arc;
use std::time::Duration;

use super::duplex::{args, follower_with, leader, options, spec};
use super::service::SCHEMA;
use crate::error::Error;
use crate::mailbox::Mailbox;
use crate::options::SlowConsumer;

/// The reason the leader ended `mailbox`'s subscription, within a bound.
async fn refusal(mailbox: &Mailbox) -> Option<Error> {
    let ended = tokio::time::timeout(
        Duration::from_secs(2),
        futures::future::poll_fn(|cx| mailbox.poll_next(cx)),
    )
    .await;
    assert!(matches!(ended, Ok(None)), "ended without an item");
    mailbox.close_reason()
}

fn mailbox() -> Arc<Mailbox> {
    Arc::new(Mailbox::new("hold", 4, SlowConsumer::KeepLatest))
}

#[tokio::test]
async fn keys_and_topics_are_capped() {
    let options = options().max_key_len(64).max_topics(2);
    let leader = leader(&options);
    let follower = follower_with(&leader, &options, &SCHEMA)
        .await
        .expect("registers");

    // A key past the cap is refused before its arguments are decoded.
    let long = mailbox();
    let key: Arc<str> = Arc::from(format!("$$inner$$__{}", "9".repeat(100)));
    follower.subscribe(spec("hold"), &key, &args((9u32,)), 1, &long);
    match refusal(&long).await {
        Some(Error::SubscriptionEnded { reason, .. }) => {
            assert!(reason.contains("has 111 bytes (limit 64)"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Two topics run; a third is refused; one of the two again is served.
    let held: Vec<Arc<Mailbox>> = (1..=2u32)
        .map(|n| {
            let mailbox = mailbox();
            let key: Arc<str> = Arc::from(format!("$$inner$$__{n}"));
            follower.subscribe(spec("hold"), &key, &args((n,)), u64::from(n) + 1, &mailbox);
            mailbox
        })
        .collect();
    let third = mailbox();
    follower.subscribe(
        spec("hold"),
        &Arc::from("$$inner$$__3"),
        &args((3u32,)),
        10,
        &third,
    );
    match refusal(&third).await {
        Some(Error::SubscriptionEnded { reason, .. }) => {
            assert!(reason.contains("too many topics (limit 2)"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    for mailbox in &held {
        assert!(mailbox.close_reason().is_none(), "the two topics run on");
    }
    let again = mailbox();
    follower.subscribe(
        spec("hold"),
        &Arc::from("$$inner$$__1"),
        &args((1u32,)),
        11,
        &again,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        again.close_reason().is_none(),
        "a running topic takes a new subscriber"
    );
    assert!(!follower.is_lost(), "the connection is served throughout");
}
