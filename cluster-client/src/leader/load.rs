//! What the followers' calls that wait on the real client hold, all followers together: each holds
//! its arguments (up to a frame each) and a task until it ends. The per-follower cap alone would let
//! a thousand connections hold millions of calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::service::ServiceError;

/// The calls that wait, and the bytes of their arguments, against their caps.
pub(super) struct Load {
    calls: AtomicUsize,
    bytes: AtomicUsize,
    max_calls: usize,
    max_bytes: usize,
}

/// A call's share of the [`Load`], given back when dropped (the call ended, or was cancelled).
pub(super) struct Held {
    load: Arc<Load>,
    bytes: usize,
}

impl Load {
    /// Nothing held yet; at most `max_calls` calls and `max_bytes` bytes of arguments at once.
    pub(super) fn new(max_calls: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(Load {
            calls: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_calls,
            max_bytes,
        })
    }

    /// Takes a call's share, `bytes` of arguments; `Overloaded` when either cap would be passed.
    pub(super) fn hold(self: &Arc<Self>, bytes: usize) -> Result<Held, ServiceError> {
        // Taken first, then checked: racing callers never pass a cap together. An over-cap share
        // is given back when `held` drops.
        let calls_before = self.calls.fetch_add(1, Ordering::AcqRel);
        let bytes_before = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        let held = Held {
            load: Arc::clone(self),
            bytes,
        };
        if calls_before >= self.max_calls {
            return Err(ServiceError::Overloaded {
                limit: self.max_calls,
            });
        }
        if bytes_before.saturating_add(bytes) > self.max_bytes {
            return Err(ServiceError::OverloadedBytes {
                limit: self.max_bytes,
            });
        }
        Ok(held)
    }

    /// The calls holding a share now.
    #[cfg(test)]
    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::Acquire)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.load.calls.fetch_sub(1, Ordering::AcqRel);
        self.load.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_capped_in_count_and_bytes_and_given_back() {
        let load = Load::new(2, 100);
        let a = load.hold(40).expect("fits");
        let b = load.hold(40).expect("fits");
        assert!(matches!(
            load.hold(1),
            Err(ServiceError::Overloaded { limit: 2 })
        ));
        drop(b);
        assert!(matches!(
            load.hold(61),
            Err(ServiceError::OverloadedBytes { limit: 100 })
        ));
        let c = load.hold(60).expect("fits exactly");
        assert_eq!(load.calls(), 2);
        drop((a, c));
        assert_eq!(load.calls(), 0);
        assert_eq!(load.bytes.load(Ordering::Acquire), 0);
    }
}
