//! Elections of a handle: the first, at `create()`, and every later one, run by the supervisor
//! whenever the leader is lost.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::role::Role;
use super::{Inner, State};
use crate::election::{self, Lost, Retries, Won};
use crate::error::Error;
use crate::role_change::unix_ms;
use crate::stats::Failover;

impl Inner {
    /// The election at `create()`: retried while no leader is reachable, up to `max_wait_time`.
    pub(super) async fn first_election(&self) -> Result<Won, Error> {
        let started = Instant::now();
        let give_up = started + self.options.max_wait_time;
        let mut retries = Retries::default();
        loop {
            let lost = match election::run(&self.ballot(true)).await {
                Ok(won) => return Ok(won),
                // A real client that could not be built here may be built on the next round, here
                // or in another process, within `connect_timeout`.
                Err(Lost::Fatal(err @ Error::Factory { .. }))
                    if self.options.retry_factory
                        && started.elapsed() < self.options.connect_timeout =>
                {
                    tracing::debug!(channel = %self.channel, error = %err, "the real client could not be built; retrying");
                    Lost::Retry(err)
                }
                Err(Lost::Fatal(err)) => return Err(err),
                Err(lost) => lost,
            };
            let pause = retries.pause(&lost);
            let (Lost::Moving(mut err) | Lost::Retry(mut err) | Lost::Fatal(mut err)) = lost;
            let now = Instant::now();
            if now >= give_up {
                if let Error::NoLeader { waited_ms, .. } = &mut err {
                    *waited_ms = started.elapsed().as_millis() as u64;
                }
                return Err(err);
            }
            tracing::debug!(channel = %self.channel, error = %err, "no leader yet; retrying");
            election::wait(pause.min(give_up - now)).await;
        }
    }
}

/// Watches the current role and runs the election again whenever the leader is lost or leaves.
///
/// A leader that leaves says so first and serves on meanwhile: this process elects its successor
/// at once, moves to it, and closes the old connection only once the old leader has answered its
/// calls and the successor has served each of its subscriptions ([`drain`]), so that no call
/// fails and no item falls between the two.
pub(super) async fn supervise(inner: Weak<Inner>) {
    let mut retries = Retries::default();
    // The role of a leader that is leaving, kept until its successor is elected.
    let mut moving_from: Option<Role> = None;
    // When this process saw its leader lost (not leaving), until a new role is taken.
    let mut lost_at: Option<(SystemTime, Instant)> = None;
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
                    biased;
                    () = shutdown.cancelled() => return,
                    () = role.lost() => {}
                    () = role.leaving() => moving_from = Some(role.clone()),
                }
                if role.is_leader() {
                    // The real client resigned: step down (handing the followers over, closing
                    // it), then run for the next term like any member; unless `close()` took
                    // the role first, which stops it itself.
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    let stepping_down = strong.state.send_if_modified(|now| {
                        let ours = matches!(now, State::Role(held) if held.is(&role))
                            && !shutdown.is_cancelled();
                        if ours {
                            *now = State::Electing;
                        }
                        ours
                    });
                    if !stepping_down {
                        return;
                    }
                    tracing::info!(channel = %strong.channel, "the real client resigned; stepping down");
                    drop(strong);
                    role.leave().await;
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
            if moving_from.is_some() {
                tracing::info!(channel = %strong.channel, "leader leaving; electing its successor");
            } else {
                tracing::info!(channel = %strong.channel, "leader lost; electing a new one");
                lost_at = Some((SystemTime::now(), Instant::now()));
            }
            strong.state.send_replace(State::Electing);
            retries = Retries::default();
        }
        let result = election::run(&strong.ballot(false)).await;
        match result {
            Ok(won) => {
                let (role, term) = Role::elected(won);
                if shutdown.is_cancelled() {
                    role.leave().await;
                    return;
                }
                if let (Some((at, seen)), Role::Leader(leader)) = (lost_at.take(), &role) {
                    leader.began_by_failover(Failover {
                        at_ms: unix_ms(at),
                        took_us: seen.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
                    });
                }
                strong.set_state(State::Role(role.clone()), Some(term));
                retries = Retries::default();
                if let Some(old) = moving_from.take() {
                    tokio::spawn(drain(old, role, strong.options.handover_timeout));
                }
            }
            Err(lost) => {
                let (round, troubled) = (retries.lost(), retries.troubled());
                let pause = retries.pause(&lost);
                let (Lost::Moving(err) | Lost::Retry(err) | Lost::Fatal(err)) = lost;
                if retries.troubled() == troubled {
                    tracing::debug!(channel = %strong.channel, error = %err, round, "the endpoint is changing hands; retrying");
                } else {
                    tracing::warn!(channel = %strong.channel, error = %err, round, "election round failed; retrying");
                    // Calls wait through the first pause for trouble; from the second on, they
                    // fail with the reason.
                    if troubled > 0 {
                        strong.state.send_replace(State::Unavailable(err));
                    }
                }
                drop(strong);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = election::wait(pause) => {}
                }
            }
        }
    }
}

/// Closes the connection to a leader that left, once it has answered this process's calls, the
/// successor (`new`) has served each broadcast subscription an item, and the old leader has
/// delivered up to the successor's latest item of each (so that no item between the old leader's
/// last and the successor's first is lost: a run of 20 handovers under load lost two), or after
/// `bound`.
async fn drain(old: Role, new: Role, bound: Duration) {
    let settled = async {
        while old.calls_in_flight() > 0 || !new.subscriptions_served() || !old.caught_up_with(&new)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    if tokio::time::timeout(bound, settled).await.is_err() {
        tracing::warn!(
            calls = old.calls_in_flight(),
            "the old leader's connection closed before it settled"
        );
    }
    old.leave().await;
}
