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
/// Delivery never blocks and never grows the queue past its capacity: with
/// [`SlowConsumer::KeepLatest`] the oldest item is dropped, with [`SlowConsumer::Close`] the mailbox
/// closes with [`Error::Lagged`].
#[derive(Debug)]
pub(crate) struct Mailbox {
    state: Mutex<State>,
    waker: AtomicWaker,
    capacity: usize,
    policy: SlowConsumer,
    method: &'static str,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// `Some` once closed: `Some(None)` ended cleanly, `Some(Some(e))` ended by `e`.
    closed: Option<Option<Error>>,
    /// Whether any item was ever delivered (for `subscribe_timeout`).
    delivered: bool,
}

impl Mailbox {
    pub(crate) fn new(method: &'static str, capacity: usize, policy: SlowConsumer) -> Self {
        Mailbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            policy,
            method,
        }
    }

    /// Queues an item, applying the policy when full. Ignored once closed.
    pub(crate) fn deliver(&self, item: Bytes) {
        {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.delivered = true;
            if state.queue.len() >= self.capacity {
                match self.policy {
                    SlowConsumer::KeepLatest => {
                        state.queue.pop_front();
                    }
                    SlowConsumer::Close => {
                        state.queue.clear();
                        state.closed = Some(Some(Error::Lagged {
                            method: self.method.to_owned(),
                            capacity: self.capacity,
                        }));
                        drop(state);
                        self.waker.wake();
                        return;
                    }
                }
            }
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
