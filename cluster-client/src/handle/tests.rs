//! A subscription made while an election ends is attached where its outcome sends calls, exactly
//! once, whichever comes first.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;

use super::role::Role;
use super::{Handle, Inner, State};
use crate::arguments::EncodeArgs;
use crate::election::Factory;
use crate::leader::LeaderChannel;
use crate::options::Options;
use crate::tests::service::{SCHEMA, TestService};
use crate::transcode::Codec;

thread_local! {
    /// What `Handle::subscribe` runs right after it reads the state, on this thread.
    static AFTER_STATE_READ: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
}

/// Called by `Handle::subscribe` between reading the state and attaching: runs the hook a test set.
pub(super) fn after_state_read() {
    if let Some(hook) = AFTER_STATE_READ.with(|hook| hook.borrow_mut().take()) {
        hook();
    }
}

fn never_built() -> Factory {
    Arc::new(|_| Box::pin(async { Err("not built in this test".to_owned()) }))
}

/// The election ends (this process leads) while `subscribe` is between reading the state and
/// registering the subscription. The new state must reach the subscription: its first items
/// arrive without another failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_racing_the_end_of_an_election_is_attached() {
    let options = Options::new("test");
    let inner = Inner::new(options.clone(), &SCHEMA, never_built());
    let handle = Handle {
        inner: Arc::clone(&inner),
    };
    let leader = LeaderChannel::new(
        "test".into(),
        &SCHEMA,
        options,
        crate::term::Term::new(1),
        Arc::new(TestService::default()),
    );
    let runtime = tokio::runtime::Handle::current();
    let (done, finished) = mpsc::channel();
    let elect = {
        let inner = Arc::clone(&inner);
        move || {
            // The election's outcome is published from another thread; this one waits for it (a
            // fix that holds a lock here makes it wait for the subscribe instead: then it goes on).
            std::thread::spawn(move || {
                let _entered = runtime.enter();
                inner.set_state(State::Role(Role::Leader(leader)), Some(1));
                let _ = done.send(());
            });
            let _ = finished.recv_timeout(Duration::from_millis(300));
        }
    };
    AFTER_STATE_READ.with(|hook| *hook.borrow_mut() = Some(Box::new(elect)));

    let spec = SCHEMA.method("count").expect("count is a subscribe method");
    let mut app = BytesMut::new();
    (3u32,).encode(Codec::default(), &mut app).expect("encodes");
    let mut items = handle.subscribe::<u32>(spec, "3".to_owned(), app.freeze());
    let first = tokio::time::timeout(Duration::from_secs(2), items.next()).await;
    assert!(
        matches!(first, Ok(Some(0))),
        "the subscription made during the election is served by its outcome: {first:?}"
    );
    assert!(handle.is_leader());
    let rest: Vec<u32> = tokio::time::timeout(Duration::from_secs(2), items.take(2).collect())
        .await
        .expect("the rest of the items");
    assert_eq!(rest, [1, 2], "each item once: attached once");
}
