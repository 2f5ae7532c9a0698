//! Elections of a handle: the first, at `create()`, and every later one, run by the supervisor
//! whenever the leader is lost.

use std::sync::Weak;

use tokio::time::Instant;

use super::role::Role;
use super::{Inner, State};
use crate::election::{self, Lost, Won};
use crate::error::Error;

impl Inner {
    /// The election at `create()`: retried while no leader is reachable, up to `max_wait_time`.
    pub(super) async fn first_election(&self) -> Result<Won, Error> {
        let started = Instant::now();
        let give_up = started + self.options.max_wait_time;
        let mut round = 0;
        loop {
            match election::run(&self.ballot(true)).await {
                Ok(won) => return Ok(won),
                Err(Lost::Fatal(err)) => return Err(err),
                Err(Lost::Retry(mut err)) => {
                    let now = Instant::now();
                    if now >= give_up {
                        if let Error::NoLeader { waited_ms, .. } = &mut err {
                            *waited_ms = started.elapsed().as_millis() as u64;
                        }
                        return Err(err);
                    }
                    tracing::debug!(channel = %self.channel, error = %err, "no leader yet; retrying");
                    tokio::time::sleep(election::backoff(round).min(give_up - now)).await;
                    round += 1;
                }
            }
        }
    }
}

/// Watches the current role and runs the election again whenever the leader is lost.
pub(super) async fn supervise(inner: Weak<Inner>) {
    let mut round = 0;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let shutdown = strong.shutdown.clone();
        let state = strong.state.borrow().clone();
        drop(strong);
        match state {
            State::Closed => return,
            // A follower's role ends with its connection; a leader's only with the handle.
            State::Role(role) => {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = role.lost() => {}
                }
            }
            State::Electing | State::Unavailable(_) => {}
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if shutdown.is_cancelled() {
            return;
        }
        if matches!(&*strong.state.borrow(), State::Role(role) if !role.is_leader()) {
            tracing::info!(channel = %strong.channel, "leader lost; electing a new one");
            strong.state.send_replace(State::Electing);
            round = 0;
        }
        let result = election::run(&strong.ballot(false)).await;
        match result {
            Ok(won) => {
                let (role, term) = Role::elected(won);
                if shutdown.is_cancelled() {
                    role.leave().await;
                    return;
                }
                strong.set_state(State::Role(role), Some(term));
                round = 0;
            }
            Err(Lost::Retry(err) | Lost::Fatal(err)) => {
                tracing::warn!(channel = %strong.channel, error = %err, round, "election round failed; retrying");
                if round > 0 {
                    strong.state.send_replace(State::Unavailable(err));
                }
                drop(strong);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(election::backoff(round)) => {}
                }
                round += 1;
            }
        }
    }
}
