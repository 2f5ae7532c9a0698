//! The stream a watch returns, and the small queue behind it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use super::shared::ClientShared;
use crate::protocol::Endpoint;

/// At most this many undelivered values are kept per stream; beyond, the oldest is dropped.
/// Every value is a full snapshot, so a consumer that falls behind only skips stale ones.
const MAX_QUEUED: usize = 64;

/// The undelivered values of one watch stream.
#[derive(Default)]
pub(super) struct SnapshotQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Vec<Endpoint>>,
    closed: bool,
    waker: Option<Waker>,
}

impl SnapshotQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a value (dropping the oldest if the queue is full) and wakes the consumer.
    pub(super) fn push(&self, item: Vec<Endpoint>) {
        let waker = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            if state.items.len() >= MAX_QUEUED {
                state.items.pop_front();
                tracing::debug!("registry: watch stream not polled, dropped a stale value");
            }
            state.items.push_back(item);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ends the stream once the queued values are consumed.
    pub(super) fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<Endpoint>>> {
        let mut state = self.lock();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The values of one watched service: the current value first, then one per change.
///
/// It ends when the connection closes. Dropping it unsubscribes; when it was the connection's
/// last stream of that service, an `unwatch` is sent (best effort).
pub struct WatchStream {
    queue: Arc<SnapshotQueue>,
    shared: Arc<ClientShared>,
    service: String,
    sub: u64,
}

impl WatchStream {
    pub(super) fn new(
        shared: Arc<ClientShared>,
        service: String,
        sub: u64,
        queue: Arc<SnapshotQueue>,
    ) -> Self {
        Self {
            queue,
            shared,
            service,
            sub,
        }
    }

    /// The watched service.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl Stream for WatchStream {
    type Item = Vec<Endpoint>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.shared.remove_sub(&self.service, self.sub);
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}
