//! [`Signal`]: a flag that one task waits on, polled with atomics only.
//!
//! A connection's busy tasks (its reader and its writer) wake once per frame. Waiting there on a
//! `tokio::sync::Notify` or on a `CancellationToken` costs locks on every poll: the token's state and
//! the waiter list, taken again each time a `select!` polls the future. A `Signal` has a single
//! waiter by design, so a flag and an [`AtomicWaker`] do: raising it is a store and a wake, polling it
//! two atomic operations. [`Signal::on_cancel`] waits on a token once, in a watcher task of its own,
//! and raises the signal when the token is cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

/// A flag raised by anyone and polled by one task, which it wakes.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// A signal raised when `token` is cancelled (at once if it already is). The watcher task ends
    /// with the token.
    pub(crate) fn on_cancel(token: &CancellationToken) -> Arc<Self> {
        let signal = Arc::new(Signal::default());
        let (token, watched) = (token.clone(), Arc::clone(&signal));
        tokio::spawn(async move {
            token.cancelled().await;
            watched.raise();
        });
        signal
    }

    /// Raises the signal and wakes the task that polls it.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the signal was raised, without waiting for it.
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Whether the signal was raised (it stays raised); if not, the task of `cx` is woken when it is.
    pub(crate) fn poll_raised(&self, cx: &mut Context<'_>) -> bool {
        self.poll_with(cx, |raised| raised.load(Ordering::Acquire))
    }

    /// Resolves once the signal is raised (it stays raised).
    pub(crate) fn raised(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.poll_raised(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Whether the signal was raised since the last take, lowering it; if not, the task of `cx` is
    /// woken when it is.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> bool {
        self.poll_with(cx, |raised| raised.swap(false, Ordering::AcqRel))
    }

    fn poll_with(&self, cx: &mut Context<'_>, check: impl Fn(&AtomicBool) -> bool) -> bool {
        if check(&self.raised) {
            return true;
        }
        self.waker.register(cx.waker());
        // Raised between the check and the registration: its wake went to the old waker.
        check(&self.raised)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::task::noop_waker_ref;

    use super::*;

    async fn raised(signal: Arc<Signal>) {
        signal.raised().await;
    }

    #[tokio::test]
    async fn a_cancel_wakes_the_waiting_task() {
        let token = CancellationToken::new();
        let waiting = tokio::spawn(raised(Signal::on_cancel(&token)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "raised before the cancel");
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the cancel")
            .expect("task ran");
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_watch_is_seen() {
        let token = CancellationToken::new();
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), raised(Signal::on_cancel(&token)))
            .await
            .expect("seen as raised");
    }

    #[test]
    fn a_take_lowers_the_signal_and_a_raise_is_not_lost() {
        let signal = Signal::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(!signal.poll_take(&mut cx));
        signal.raise();
        signal.raise();
        assert!(signal.poll_take(&mut cx), "raised before the poll");
        assert!(
            !signal.poll_take(&mut cx),
            "two raises before a take are one"
        );
        signal.raise();
        assert!(signal.poll_raised(&mut cx));
        assert!(signal.poll_raised(&mut cx), "poll_raised leaves it raised");
        assert!(signal.is_raised());
    }
}
