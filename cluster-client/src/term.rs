//! [`Term`]: a leader's term as its real client sees it, given to the factory that builds it.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One term of this process as leader, handed to the factory of `create_with`: the real client
/// keeps it to tell the cluster about its upstream.
///
/// - [`upstream_restored`](Self::upstream_restored): the upstream came back after an outage (a
///   reconnect, a restarted server); the leader sends every remembered `#[publish]` call again, its
///   own process's and its followers'.
/// - [`resign`](Self::resign): the real client is broken for good; the leader steps down, and the
///   next election (in whichever process wins it, this one too) runs the factory again.
///
/// Cloning is cheap; every clone is the same term.
#[derive(Debug, Clone)]
pub struct Term {
    inner: Arc<Signals>,
}

#[derive(Debug)]
struct Signals {
    epoch: u64,
    restored: Notify,
    resigned: CancellationToken,
    ended: CancellationToken,
}

impl Term {
    /// Term `epoch`, not yet begun.
    pub(crate) fn new(epoch: u64) -> Self {
        Term {
            inner: Arc::new(Signals {
                epoch,
                restored: Notify::new(),
                resigned: CancellationToken::new(),
                ended: CancellationToken::new(),
            }),
        }
    }

    /// The term's number (see `Handle::epoch`).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// Says the real client's upstream is back after an outage: the leader sends every publish it
    /// remembers again, so that what the upstream lost (registrations, announcements) is there
    /// again. Signals given before the leader gets to them count once.
    pub fn upstream_restored(&self) {
        self.inner.restored.notify_one();
    }

    /// Steps down: the leader hands its followers over and closes this real client, as at
    /// `close()`, and this process then joins the next election like any member. Whoever wins it
    /// builds a new real client. Resigning twice, or after the term ended, does nothing. (In single
    /// mode there is no one to hand over to: the real client is kept.)
    pub fn resign(&self) {
        self.inner.resigned.cancel();
    }

    /// Whether the term is over: the leader stopped (it resigned, closed, or its handle was
    /// dropped).
    pub fn is_over(&self) -> bool {
        self.inner.ended.is_cancelled()
    }

    /// Resolves when the term is over: a real client's background tasks can stop with it.
    pub async fn over(&self) {
        self.inner.ended.cancelled().await;
    }

    /// Resolves at each [`upstream_restored`](Self::upstream_restored).
    pub(crate) async fn restored(&self) {
        self.inner.restored.notified().await;
    }

    /// Resolves once the real client resigned.
    pub(crate) async fn resigned(&self) {
        self.inner.resigned.cancelled().await;
    }

    /// Whether the real client resigned.
    pub(crate) fn has_resigned(&self) -> bool {
        self.inner.resigned.is_cancelled()
    }

    /// Ends the term.
    pub(crate) fn end(&self) {
        self.inner.ended.cancel();
    }
}
