//! [`Mailbox`]: the bounded buffer between whoever delivers subscription items and the consumer.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::task::AtomicWaker;

use crate::error::Error;
use crate::options::SlowConsumer;

/// A bounded queue of encoded items with a slow-consumer policy and a close reason.
///
/// Delivery never blocks and never grows the queue past its capacity, in items and in bytes (one
/// item larger than the byte capacity is still taken into an empty queue): with
/// [`SlowConsumer::KeepLatest`] the oldest items are dropped, with [`SlowConsumer::Close`] the
/// mailbox closes with [`Error::Lagged`].
#[derive(Debug)]
pub(crate) struct Mailbox {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
    max_bytes: usize,
    policy: SlowConsumer,
    method: &'static str,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// The bytes of the items in `queue`.
    bytes: usize,
    /// `Some` once closed: `Some(None)` ended cleanly, `Some(Some(e))` ended by `e`.
    closed: Option<Option<Error>>,
    /// Whether any item was ever delivered (for `subscribe_timeout`).
    delivered: bool,
    /// Whether the leader's upstream subscription is live (its real client's subscribe returned).
    live: bool,
}

impl Mailbox {
    pub(crate) fn new(method: &'static str, capacity: usize, policy: SlowConsumer) -> Self {
        Mailbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            max_bytes: usize::MAX,
            policy,
            method,
        }
    }

    /// Also bounds the queue to `max_bytes` of items.
    pub(crate) fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Queues an item, applying the policy when full. Ignored once closed.
    pub(crate) fn deliver(&self, item: Bytes) {
        {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.delivered = true;
            let full = |state: &State| {
                !state.queue.is_empty()
                    && (state.queue.len() >= self.capacity
                        || state.bytes.saturating_add(item.len()) > self.max_bytes)
            };
            while full(&state) {
                match self.policy {
                    SlowConsumer::KeepLatest => {
                        let dropped = state.queue.pop_front().map_or(0, |item| item.len());
                        state.bytes -= dropped;
                    }
                    SlowConsumer::Close => {
                        state.queue.clear();
                        state.bytes = 0;
                        state.closed = Some(Some(Error::Lagged {
                            method: self.method.to_owned(),
                            capacity: self.capacity,
                            max_bytes: self.max_bytes,
                        }));
                        drop(state);
                        self.waker.wake();
                        return;
                    }
                }
            }
            state.bytes += item.len();
            state.queue.push_back(item);
        }
        self.waker.wake();
    }

    /// Ends the stream once the queued items are read; the first close wins.
    pub(crate) fn close(&self, reason: Option<Error>) {
        {
            let mut state = self.lock();
            if state.closed.is_none() {
                state.closed = Some(reason);
            }
        }
        self.waker.wake();
    }

    /// The leader's upstream subscription is live: no item is missed from now on.
    pub(crate) fn set_live(&self) {
        let woke = {
            let mut state = self.lock();
            !std::mem::replace(&mut state.live, true)
        };
        if woke {
            self.waker.wake();
        }
    }

    /// `Ready(Ok)` once the upstream subscription is live; `Ready(Err)` if the mailbox closed
    /// before, with its reason.
    pub(crate) fn poll_live(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.waker.register(cx.waker());
        let state = self.lock();
        match &state.closed {
            _ if state.live => Poll::Ready(Ok(())),
            Some(reason) => Poll::Ready(Err(reason.clone().unwrap_or(Error::SubscriptionEnded {
                method: self.method.to_owned(),
                reason: "ended before it was live".to_owned(),
            }))),
            None => Poll::Pending,
        }
    }

    /// Closes with `reason` unless an item was ever delivered.
    pub(crate) fn close_if_empty(&self, reason: Error) {
        let delivered = self.lock().delivered;
        if !delivered {
            self.close(Some(reason));
        }
    }

    /// The next item, `Ready(None)` once closed and drained.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.waker.register(cx.waker());
        let mut state = self.lock();
        if let Some(item) = state.queue.pop_front() {
            state.bytes -= item.len();
            return Poll::Ready(Some(item));
        }
        if state.closed.is_some() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// Why the mailbox closed, if it closed with an error.
    pub(crate) fn close_reason(&self) -> Option<Error> {
        self.lock().closed.clone().flatten()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while pushing: the queue is still whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use futures::task::noop_waker_ref;

    use super::*;

    fn drain(mailbox: &Mailbox) -> Vec<u8> {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut items = Vec::new();
        while let Poll::Ready(Some(item)) = mailbox.poll_next(&mut cx) {
            items.push(item[0]);
        }
        items
    }

    #[test]
    fn keep_latest_drops_the_oldest_when_full() {
        let mailbox = Mailbox::new("m", 3, SlowConsumer::KeepLatest);
        for i in 0..5u8 {
            mailbox.deliver(Bytes::from(vec![i]));
        }
        assert_eq!(drain(&mailbox), [2, 3, 4]);
        assert!(mailbox.close_reason().is_none());
    }

    /// Items of 1 MiB into a buffer of 100 items and 3 MiB: the bytes bound first. Before, a slow
    /// consumer of large items held `subscription_buffer` of them, whatever their size.
    #[test]
    fn the_buffer_is_bounded_in_bytes_too() {
        let mailbox = Mailbox::new("m", 100, SlowConsumer::KeepLatest).max_bytes(3 << 20);
        for i in 0..10u8 {
            mailbox.deliver(Bytes::from(vec![i; 1 << 20]));
        }
        assert_eq!(mailbox.lock().bytes, 3 << 20);
        assert_eq!(drain(&mailbox), [7, 8, 9]);
        assert_eq!(mailbox.lock().bytes, 0);
        // One item larger than the whole buffer is still delivered, alone.
        mailbox.deliver(Bytes::from(vec![1; 1 << 20]));
        mailbox.deliver(Bytes::from(vec![2; 4 << 20]));
        assert_eq!(drain(&mailbox), [2]);

        let closing = Mailbox::new("m", 100, SlowConsumer::Close).max_bytes(2 << 20);
        for i in 0..3u8 {
            closing.deliver(Bytes::from(vec![i; 1 << 20]));
        }
        assert!(matches!(
            closing.close_reason(),
            Some(Error::Lagged { max_bytes, .. }) if max_bytes == 2 << 20
        ));
    }

    #[test]
    fn close_policy_ends_the_stream_with_lagged() {
        let mailbox = Mailbox::new("m", 2, SlowConsumer::Close);
        for i in 0..3u8 {
            mailbox.deliver(Bytes::from(vec![i]));
        }
        assert_eq!(drain(&mailbox), Vec::<u8>::new());
        assert!(matches!(
            mailbox.close_reason(),
            Some(Error::Lagged { capacity: 2, .. })
        ));
        mailbox.deliver(Bytes::from_static(&[9]));
        assert_eq!(drain(&mailbox), Vec::<u8>::new(), "nothing after the close");
    }

    #[test]
    fn queued_items_are_read_before_the_end_and_the_first_close_wins() {
        let mailbox = Mailbox::new("m", 8, SlowConsumer::KeepLatest);
        mailbox.deliver(Bytes::from_static(&[1]));
        mailbox.close(Some(Error::Closed));
        mailbox.close(None);
        assert_eq!(drain(&mailbox), [1]);
        assert!(matches!(mailbox.close_reason(), Some(Error::Closed)));
    }

    #[test]
    fn close_if_empty_only_closes_a_mailbox_that_never_got_an_item() {
        let timeout = || Error::SubscribeTimeout {
            method: "m".into(),
            ms: 1,
        };
        let fresh = Mailbox::new("m", 8, SlowConsumer::KeepLatest);
        fresh.close_if_empty(timeout());
        assert!(matches!(
            fresh.close_reason(),
            Some(Error::SubscribeTimeout { .. })
        ));
        let fed = Mailbox::new("m", 8, SlowConsumer::KeepLatest);
        fed.deliver(Bytes::from_static(&[1]));
        drain(&fed);
        fed.close_if_empty(timeout());
        assert!(fed.close_reason().is_none());
    }
}
