//! Pauses that grow between retries, with jitter so that processes retrying together spread out.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The pause after `round` failed rounds: `first` doubled per round up to `max`, with ±50 % jitter.
pub(crate) fn pause(first: Duration, max: Duration, round: u32) -> Duration {
    let base = first.saturating_mul(1 << round.min(20)).min(max);
    let jitter = RandomState::new().hash_one(round) % 1000;
    base / 2 + base.mul_f64(jitter as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_within_the_jitter() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for round in 0..40 {
            let base = (first * 2u32.pow(round.min(20))).min(max);
            let pause = pause(first, max, round);
            assert!(
                pause >= base / 2 && pause <= base * 3 / 2,
                "{round}: {pause:?}"
            );
        }
    }
}
