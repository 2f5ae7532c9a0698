//! [`Budget`]: bytes that a member holds for its peers, shared by all its connections: frames that
//! have begun to arrive but are not whole yet, and output queued but not yet written. A peer that
//! would take the budget past its limit is refused (its connection closed) instead of growing the
//! process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A byte budget shared by the connections of one endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Budget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Budget {
        Budget(Arc::new(Shared {
            used: AtomicUsize::new(0),
            limit,
        }))
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.0.limit
    }

    /// Takes `bytes` if they fit under the limit; give them back with [`give`](Self::give).
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        self.0
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&after| after <= self.0.limit)
            })
            .is_ok()
    }

    /// Takes `bytes` even past the limit (a small overshoot the caller has bounded).
    pub(crate) fn take_over(&self, bytes: usize) {
        self.0.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back `bytes` taken before.
    pub(crate) fn give(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Takes `bytes` if they fit, as a guard that gives them back when dropped.
    pub(crate) fn take(&self, bytes: usize) -> Option<Taken> {
        self.try_take(bytes).then(|| Taken {
            budget: self.clone(),
            bytes,
        })
    }

    /// Bytes taken now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.0.used.load(Ordering::Acquire)
    }
}

/// Bytes taken from a [`Budget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Taken {
    budget: Budget,
    bytes: usize,
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let budget = Budget::new(100);
        let first = budget.take(60).expect("fits");
        assert!(budget.take(41).is_none(), "101 > 100");
        assert!(budget.try_take(40));
        assert_eq!(budget.used(), 100);
        drop(first);
        budget.give(40);
        assert_eq!(budget.used(), 0);
        assert!(!budget.try_take(usize::MAX), "no overflow");
    }
}
