//! The calls of one connection that wait for an answer, by request id.
//!
//! Callers register calls on one thread while the reader completes others on another; the calls are
//! spread over a few locks by id (ids are consecutive), so the two rarely wait for each other.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::protocol::ids::IdGen;

/// Locks the calls are spread over.
const SHARDS: usize = 8;

/// Calls by request id. Ids are small distinct counters, so a multiplicative hash does.
type IdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of an `i64` id.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.0 = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What a pending call must tell: when it is due.
pub(super) trait Due {
    /// When the call fails with a timeout, unless answered first.
    fn deadline(&self) -> Instant;
}

/// The pending calls of a connection.
pub(super) struct Pending<C> {
    shards: [Mutex<IdMap<C>>; SHARDS],
    len: AtomicUsize,
}

impl<C> Default for Pending<C> {
    fn default() -> Self {
        Pending {
            shards: std::array::from_fn(|_| Mutex::default()),
            len: AtomicUsize::new(0),
        }
    }
}

impl<C: Due> Pending<C> {
    fn shard(&self, id: i64) -> MutexGuard<'_, IdMap<C>> {
        self.shards[id.rem_euclid(SHARDS as i64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `call` under the next id of `ids` that no pending call holds (ids wrap, so a very
    /// old call may still hold one); returns the id and how many calls are now pending.
    pub(super) fn insert(&self, ids: &IdGen, call: C) -> (i64, usize) {
        loop {
            let id = ids.next();
            if let Entry::Vacant(slot) = self.shard(id).entry(id) {
                slot.insert(call);
                let len = self.len.fetch_add(1, Ordering::AcqRel) + 1;
                return (id, len);
            }
        }
    }

    /// Takes the call of `id` out, if it is still pending.
    pub(super) fn remove(&self, id: i64) -> Option<C> {
        let call = self.shard(id).remove(&id)?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(call)
    }

    /// How many calls are pending.
    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no call is pending.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every pending call out.
    pub(super) fn drain(&self) -> Vec<C> {
        self.take_where(|_| true).0
    }

    /// Takes out the calls due at `now`; also returns the earliest deadline of those left.
    pub(super) fn expire(&self, now: Instant) -> (Vec<C>, Option<Instant>) {
        self.take_where(|call| call.deadline() <= now)
    }

    fn take_where(&self, mut take: impl FnMut(&C) -> bool) -> (Vec<C>, Option<Instant>) {
        let mut taken = Vec::new();
        let mut next: Option<Instant> = None;
        for shard in &self.shards {
            let mut calls = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<i64> = calls
                .iter()
                .filter(|(_, call)| take(call))
                .map(|(id, _)| *id)
                .collect();
            taken.extend(ids.iter().filter_map(|id| calls.remove(id)));
            let earliest = calls.values().map(Due::deadline).min();
            next = next.into_iter().chain(earliest).min();
        }
        self.len.fetch_sub(taken.len(), Ordering::AcqRel);
        (taken, next)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Call(Instant);

    impl Due for Call {
        fn deadline(&self) -> Instant {
            self.0
        }
    }

    #[test]
    fn ids_held_are_skipped_and_counts_follow_every_change() {
        let pending = Pending::default();
        let ids = IdGen::default();
        let now = Instant::now();
        let (first, n) = pending.insert(&ids, Call(now));
        assert_eq!((first, n), (1, 1));
        // The counter wraps back onto the id still held: the next free one is taken instead.
        ids.restart_at(first);
        let (second, n) = pending.insert(&ids, Call(now + Duration::from_secs(5)));
        assert_eq!((second, n), (first + 1, 2));
        let (due, next) = pending.expire(now);
        assert_eq!(due.len(), 1);
        assert_eq!(next, Some(now + Duration::from_secs(5)));
        assert_eq!(pending.len(), 1);
        assert!(pending.remove(first).is_none(), "expired already");
        assert!(pending.remove(second).is_some());
        assert!(pending.is_empty());
        assert!(pending.drain().is_empty());
    }

    #[test]
    fn the_earliest_deadline_is_found_across_shards() {
        let pending = Pending::default();
        let ids = IdGen::default();
        let now = Instant::now();
        for i in 0..(3 * SHARDS as u64) {
            pending.insert(&ids, Call(now + Duration::from_millis(100 + i)));
        }
        let (due, next) = pending.expire(now);
        assert!(due.is_empty());
        assert_eq!(next, Some(now + Duration::from_millis(100)));
        assert_eq!(pending.drain().len(), 3 * SHARDS);
        assert_eq!(pending.len(), 0);
    }
}
