//! [`Role`]: what an election made this process, and where a handle's calls and subscriptions go
//! while it holds it. The one place that tells a leader from a follower.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::SubEntry;
use crate::election::Won;
use crate::follower::{CallError, FollowerConn};
use crate::leader::LeaderChannel;
use crate::role_change::{MemberRole, RoleChange};
use crate::service::{MethodKind, MethodSpec, Reply};
use crate::stats::Stats;

/// This process's role in the channel for one term.
#[derive(Clone)]
pub(super) enum Role {
    /// This process leads the channel: calls run on its real client.
    Leader(Arc<LeaderChannel>),
    /// This process follows over this connection: calls go to the leader.
    Follower(Arc<FollowerConn>),
}

impl Role {
    /// The role an election gave, and its term.
    pub(super) fn elected(won: Won) -> (Role, u64) {
        match won {
            Won::Leader(leader) => {
                let term = leader.epoch();
                (Role::Leader(leader), term)
            }
            Won::Follower(conn) => {
                let term = conn.epoch();
                (Role::Follower(conn), term)
            }
        }
    }

    /// What this role is, in term `epoch`, as a change of role reports it.
    pub(super) fn describe(&self, epoch: u64) -> RoleChange {
        let (role, leader) = match self {
            Role::Leader(leader) => (MemberRole::Leader, leader.leader_info()),
            Role::Follower(conn) => (MemberRole::Follower, conn.leader()),
        };
        RoleChange {
            role,
            epoch,
            leader,
        }
    }

    /// The channel's snapshot: this leader's own, or asked of the leader until `deadline`.
    pub(super) async fn stats(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Stats, CallError> {
        match self {
            Role::Leader(leader) => Ok(leader.stats()),
            Role::Follower(conn) => conn.stats(deadline, timeout).await,
        }
    }

    /// Whether `other` is this very role (the same leader channel or connection).
    pub(super) fn is(&self, other: &Role) -> bool {
        match (self, other) {
            (Role::Leader(a), Role::Leader(b)) => Arc::ptr_eq(a, b),
            (Role::Follower(a), Role::Follower(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Whether this process leads the channel.
    pub(super) fn is_leader(&self) -> bool {
        matches!(self, Role::Leader(_))
    }

    /// Whether calls can go there now: a follower's connection may be lost already.
    pub(super) fn is_usable(&self) -> bool {
        match self {
            Role::Leader(_) => true,
            Role::Follower(conn) => !conn.is_lost(),
        }
    }

    /// Resolves when the role is lost: a follower's when its connection is gone; a leader's when
    /// its real client resigns (else it keeps its role until it leaves).
    pub(super) async fn lost(&self) {
        match self {
            Role::Leader(leader) => leader.resigned().await,
            Role::Follower(conn) => conn.lost().await,
        }
    }

    /// Resolves when the leader says it is leaving (a leader's own role never does).
    pub(super) async fn leaving(&self) {
        match self {
            Role::Leader(_) => std::future::pending().await,
            Role::Follower(conn) => conn.leaving().await,
        }
    }

    /// Calls of this role waiting for their answers.
    pub(super) fn calls_in_flight(&self) -> usize {
        match self {
            Role::Leader(_) => 0,
            Role::Follower(conn) => conn.calls_in_flight(),
        }
    }

    /// Whether every broadcast subscription attached to this role has had an item.
    pub(super) fn subscriptions_served(&self) -> bool {
        match self {
            Role::Leader(leader) => leader.subscriptions_served(),
            Role::Follower(conn) => conn.subscriptions_served(),
        }
    }

    /// Whether this role, the connection to a leader that is leaving, has caught up with its
    /// successor `new`: for every broadcast subscription, the latest item from here is the latest
    /// from there. Until then an item the successor skipped (it starts from the current value)
    /// may still be on its way from here. A leader's own role has nothing to catch up.
    pub(super) fn caught_up_with(&self, new: &Role) -> bool {
        let Role::Follower(old) = self else {
            return true;
        };
        // A leader whose real client resigned cannot deliver what the successor's can.
        if old.leader_resigned() {
            return true;
        }
        old.latest_items()
            .into_iter()
            .all(|((method, key), latest)| {
                let theirs = match new {
                    Role::Leader(leader) => leader.latest_item(method, &key),
                    Role::Follower(conn) => conn.latest_item(method, &key),
                };
                theirs.is_none() || theirs == latest
            })
    }

    /// Runs an invoke, oneway or publish call until `deadline` (`timeout` after the call began).
    pub(super) async fn call(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        match self {
            Role::Leader(leader) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                Ok(leader.call_local(spec, argc, app, remaining).await?)
            }
            Role::Follower(conn) => {
                let oneway = spec.kind != MethodKind::Invoke;
                conn.call_until(spec, argc, app, oneway, deadline, timeout)
                    .await
            }
        }
    }

    /// Attaches subscription `id` of the handle.
    pub(super) fn subscribe(&self, id: u64, sub: &SubEntry) {
        match self {
            Role::Leader(leader) => {
                leader.subscribe_local(sub.spec, &sub.key, &sub.app, id, &sub.mailbox)
            }
            Role::Follower(conn) => conn.subscribe(sub.spec, &sub.key, &sub.app, id, &sub.mailbox),
        }
    }

    /// Drops subscription `id` of the handle.
    pub(super) fn unsubscribe(&self, id: u64, sub: &SubEntry) {
        match self {
            Role::Leader(leader) => leader.unsubscribe_local(sub.spec, &sub.key, id),
            Role::Follower(conn) => conn.unsubscribe(sub.spec, &sub.key, id),
        }
    }

    /// Gives the role up: a leader stops its channel, a follower closes its connection.
    pub(super) async fn leave(self) {
        match self {
            Role::Leader(leader) => leader.stop().await,
            Role::Follower(conn) => conn.close(),
        }
    }

    /// Gives the role up without waiting (the handle is dropped): a leader's channel is stopped on
    /// the current runtime, if there is one.
    pub(super) fn leave_soon(self) {
        match self {
            Role::Leader(leader) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { leader.stop().await });
                }
            }
            Role::Follower(conn) => conn.close(),
        }
    }
}
