//! Request ids: as the original, they count from 1 and wrap back to 1 at 2^30.

use std::sync::atomic::{AtomicI64, Ordering};

/// The first id past the range; ids stay below it, as the original's do.
pub(crate) const ID_LIMIT: i64 = 1 << 30;

/// A wrapping id counter.
#[derive(Debug)]
pub(crate) struct IdGen(AtomicI64);

impl IdGen {
    /// A counter whose first id is `first` (clamped into `1..ID_LIMIT`).
    pub(crate) fn starting_at(first: i64) -> Self {
        IdGen(AtomicI64::new(first.clamp(1, ID_LIMIT - 1) - 1))
    }

    /// Makes `next` continue from `first` (clamped into `1..ID_LIMIT`).
    #[cfg(test)]
    pub(crate) fn restart_at(&self, first: i64) {
        self.0
            .store(first.clamp(1, ID_LIMIT - 1) - 1, Ordering::Relaxed);
    }

    /// The next id in `1..ID_LIMIT`.
    pub(crate) fn next(&self) -> i64 {
        let step = |id: i64| if id + 1 >= ID_LIMIT { 1 } else { id + 1 };
        match self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| Some(step(id)))
        {
            Ok(previous) | Err(previous) => step(previous),
        }
    }
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen::starting_at(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_one_and_wraps_below_the_limit() {
        let ids = IdGen::default();
        assert_eq!(ids.next(), 1);
        assert_eq!(ids.next(), 2);
        let ids = IdGen::starting_at(ID_LIMIT - 1);
        assert_eq!(ids.next(), ID_LIMIT - 1);
        assert_eq!(ids.next(), 1);
    }
}
