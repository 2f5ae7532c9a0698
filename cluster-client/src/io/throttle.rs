//! A limit on how often a warning that a peer can provoke is logged: a flood of bad packets must not
//! become a flood of log lines.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long one window lasts.
const WINDOW: Duration = Duration::from_secs(1);

/// Lets through at most `per_window` events a second and counts the others, so that the next event
/// let through can say how many were left out.
#[derive(Debug)]
pub(crate) struct Throttle {
    per_window: u32,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    let_through: u32,
    suppressed: u64,
}

/// How many warnings a second a member logs about what one source of peers does (one leader
/// channel, one port server).
const PEER_WARNINGS_PER_SECOND: u32 = 10;

impl Throttle {
    /// The limit on warnings that peers can provoke: [`PEER_WARNINGS_PER_SECOND`].
    pub(crate) fn for_peer_warnings() -> Throttle {
        Throttle::new(PEER_WARNINGS_PER_SECOND)
    }

    /// At most `per_second` events a second.
    pub(crate) fn new(per_second: u32) -> Throttle {
        Throttle {
            per_window: per_second,
            window: Mutex::new(Window {
                started: Instant::now(),
                let_through: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(left_out)` when this event is to be logged, with how many were left out since the last
    /// one that was; `None` when it is left out.
    pub(crate) fn admit(&self) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(window.started) >= WINDOW {
            window.started = now;
            window.let_through = 0;
        }
        if window.let_through < self.per_window {
            window.let_through += 1;
            Some(std::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_limit_and_counted() {
        let throttle = Throttle::new(5);
        let admitted: Vec<Option<u64>> = (0..100_000).map(|_| throttle.admit()).collect();
        let logged = admitted.iter().filter(|a| a.is_some()).count();
        // The loop may straddle a window or two on a slow machine, never more.
        assert!((5..=15).contains(&logged), "{logged} logged");
        assert_eq!(&admitted[..5], &[Some(0); 5]);
        assert_eq!(admitted[5], None);
        // A new window lets the next one through, with the count of those left out.
        {
            let mut window = throttle.window.lock().expect("not poisoned");
            window.started = window
                .started
                .checked_sub(WINDOW)
                .expect("an earlier instant");
        }
        let left_out = throttle.admit().expect("a new window");
        assert!(left_out > 90_000, "{left_out}");
        assert_eq!(throttle.admit(), Some(0));
    }
}
