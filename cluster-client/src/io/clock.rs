//! The library's housekeeping timers (call deadlines, heartbeats, idle checks), kept off the
//! application's runtime.
//!
//! While a runtime has a timer registered, each of its workers parks with a timeout, and the kernel
//! arms and cancels a timer on every park; in a virtual machine that is a trap to the host each time.
//! On a sequential round trip of a few microseconds that is measurable (about 0.3 µs in the
//! benchmark's sequential figures). These timers are long (seconds) and rarely moved, so they run on
//! one small current-thread runtime of their own, on a background thread started at the first use:
//! the application's runtime parks without a timeout unless the application sets a timer itself.
//! If that thread cannot be started, the timers fall back to the caller's runtime.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle};
use tokio_util::task::AbortOnDropHandle;

/// Stack of the clock thread: it only runs timer wake-ups.
const STACK_SIZE: usize = 256 * 1024;

/// Waits until `at`.
pub(crate) async fn sleep_until(at: Instant) {
    match clock() {
        Some(clock) => {
            // Made inside the task: a `Sleep` belongs to the runtime it is created in. Dropping the
            // wait cancels the task.
            let timer = clock.spawn(async move { tokio::time::sleep_until(at.into()).await });
            let _ = AbortOnDropHandle::new(timer).await;
        }
        None => tokio::time::sleep_until(at.into()).await,
    }
}

/// Waits for `duration`.
pub(crate) async fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration).await;
}

/// The clock thread's runtime, started at the first call.
fn clock() -> Option<&'static Handle> {
    static CLOCK: OnceLock<Option<Handle>> = OnceLock::new();
    CLOCK.get_or_init(start).as_ref()
}

fn start() -> Option<Handle> {
    let started = Builder::new_current_thread()
        .enable_time()
        .build()
        .and_then(|runtime| {
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("cluster-client-clock".into())
                .stack_size(STACK_SIZE)
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
            Ok(handle)
        });
    match started {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::warn!(error = %err, "no clock thread; library timers run on the caller's runtime");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn wakes_at_the_deadline_not_before() {
        let started = Instant::now();
        sleep(Duration::from_millis(30)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "woke after {waited:?}");
        assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
    }

    #[test]
    fn needs_no_timer_in_the_callers_runtime() {
        // A runtime without a time driver: `tokio::time::sleep` would panic in it.
        let runtime = Builder::new_current_thread()
            .build()
            .expect("a runtime without time");
        let started = Instant::now();
        runtime.block_on(sleep(Duration::from_millis(10)));
        assert!(started.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn runs_on_the_clock_thread() {
        let clock = clock().expect("the clock thread starts");
        let runtime = Builder::new_current_thread().build().expect("a runtime");
        let on = runtime
            .block_on(clock.spawn(async { std::thread::current().name().map(str::to_owned) }))
            .expect("runs");
        assert_eq!(on.as_deref(), Some("cluster-client-clock"));
    }
}
