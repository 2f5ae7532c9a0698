//! What this process is in its channel, as [`Handle::roles`](crate::Handle::roles) reports it at
//! every change: leader or follower, the term, and who leads.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Whether this process holds the real client or forwards to the process that does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// This process holds the real client and serves the others.
    Leader,
    /// This process's calls and subscriptions go to the leader.
    Follower,
}

/// The process that leads a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Its process id; `None` for a leader that does not say it (the Node package's).
    pub pid: Option<u32>,
    /// When its term began, in milliseconds since the Unix epoch; `None` likewise.
    pub since_ms: Option<u64>,
}

impl LeaderInfo {
    /// This process, leading since `since`.
    pub(crate) fn this_process(since: SystemTime) -> LeaderInfo {
        LeaderInfo {
            pid: Some(std::process::id()),
            since_ms: Some(unix_ms(since)),
        }
    }
}

/// One change of this process's role: what it is from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoleChange {
    /// Leader or follower.
    pub role: MemberRole,
    /// The leadership term: it grows at every failover and handover (0 in single mode, and under
    /// a leader that does not number its terms, such as the Node package's).
    pub epoch: u64,
    /// Who leads in this term: this process when `role` is [`MemberRole::Leader`].
    pub leader: LeaderInfo,
}

impl RoleChange {
    /// The value before the first election ends; no receiver ever sees it, as `create()` returns
    /// after the first role is set.
    pub(crate) const UNSET: RoleChange = RoleChange {
        role: MemberRole::Follower,
        epoch: 0,
        leader: LeaderInfo {
            pid: None,
            since_ms: None,
        },
    };
}

/// The receiver of a process's role changes: [`borrow`](tokio::sync::watch::Receiver::borrow) reads
/// the role now, [`changed`](tokio::sync::watch::Receiver::changed) waits for the next change.
pub type Roles = tokio::sync::watch::Receiver<RoleChange>;

/// Where a handle publishes its role changes: every receiver sees each change, and sees the feed
/// end when the handle closes (`changed()` then fails), so that a loop over the changes ends too.
pub(crate) struct RoleFeed {
    state: Mutex<FeedState>,
}

struct FeedState {
    /// `None` once the handle closed.
    tx: Option<tokio::sync::watch::Sender<RoleChange>>,
    last: RoleChange,
}

impl RoleFeed {
    /// A feed holding [`RoleChange::UNSET`] until the first role.
    pub(crate) fn new() -> RoleFeed {
        RoleFeed {
            state: Mutex::new(FeedState {
                tx: Some(tokio::sync::watch::Sender::new(RoleChange::UNSET)),
                last: RoleChange::UNSET,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every receiver of a change (none after the feed ended).
    pub(crate) fn publish(&self, change: RoleChange) {
        let mut state = self.lock();
        state.last = change;
        if let Some(tx) = &state.tx {
            tx.send_replace(change);
        }
    }

    /// Ends the feed.
    pub(crate) fn end(&self) {
        self.lock().tx = None;
    }

    /// A receiver holding the latest change; one whose feed has ended already if it has.
    pub(crate) fn subscribe(&self) -> Roles {
        let state = self.lock();
        match &state.tx {
            Some(tx) => tx.subscribe(),
            None => tokio::sync::watch::channel(state.last).1,
        }
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_in(epoch: u64) -> RoleChange {
        RoleChange {
            role: MemberRole::Leader,
            epoch,
            leader: LeaderInfo::this_process(SystemTime::now()),
        }
    }

    /// A receiver sees each change, and the end of the feed; one taken after the end holds the last
    /// change and has ended already.
    #[tokio::test]
    async fn receivers_see_changes_and_the_end() {
        let feed = RoleFeed::new();
        let mut roles = feed.subscribe();
        feed.publish(leader_in(7));
        roles.changed().await.expect("a change");
        assert_eq!(roles.borrow_and_update().epoch, 7);
        feed.end();
        feed.publish(leader_in(8));
        assert!(roles.changed().await.is_err(), "the feed ended");
        let late = feed.subscribe();
        assert_eq!(late.borrow().epoch, 8);
        assert!(late.has_changed().is_err(), "ended already");
    }
}
