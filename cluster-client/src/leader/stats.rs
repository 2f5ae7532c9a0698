//! What the leader counts for [`Stats`]: the calls on its real client, the bytes of its follower
//! connections, and the failover that began its term; and the snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::LeaderChannel;
use super::publishes::Publisher;
use crate::role_change::{LeaderInfo, MemberRole};
use crate::service::{Reply, ServiceError};
use crate::stats::{CallStats, Failover, FollowerStats, Stats};

/// Calls on the real client: started, and how those that ended, ended.
#[derive(Default)]
pub(super) struct CallCounters {
    started: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
}

impl CallCounters {
    /// A call begins.
    pub(super) fn start(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended with `result`.
    pub(super) fn end(&self, result: &Result<Reply, ServiceError>) {
        match result {
            Ok(Reply::Value(_)) => self.served.fetch_add(1, Ordering::Relaxed),
            Ok(Reply::Error(_)) | Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// A call ended without an answer: past its deadline, or its follower left.
    pub(super) fn abandon(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> CallStats {
        // Ends are read before starts, so that a call ending meanwhile is not counted twice.
        let served = self.served.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let started = self.started.load(Ordering::Relaxed);
        CallStats {
            served,
            failed,
            in_flight: started.saturating_sub(served + failed),
        }
    }
}

/// Bytes read from and written to follower connections.
#[derive(Default)]
pub(super) struct Traffic {
    pub(super) bytes_in: AtomicU64,
    pub(super) bytes_out: AtomicU64,
}

impl Traffic {
    /// Adds a closed connection's totals.
    pub(super) fn add(&self, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }
}

impl LeaderChannel {
    /// Who leads: this process, since the term began.
    pub(crate) fn leader_info(&self) -> LeaderInfo {
        LeaderInfo::this_process(self.since)
    }

    /// Records the failover that began this term.
    pub(crate) fn began_by_failover(&self, failover: Failover) {
        let _ = self.failover.set(failover);
    }

    /// A snapshot of the channel, as this leader sees it.
    pub(crate) fn stats(&self) -> Stats {
        let followers: Vec<FollowerStats> = self
            .followers()
            .iter()
            .map(|(id, follower)| FollowerStats {
                pid: follower.pid,
                bytes_in: follower.bytes_in.load(Ordering::Relaxed),
                bytes_out: follower.outbox.sent(),
                publishes: self.publishes.stats(Some(Publisher::Conn(*id))),
            })
            .collect();
        let bytes_in = self.closed_traffic.bytes_in.load(Ordering::Relaxed)
            + followers.iter().map(|f| f.bytes_in).sum::<u64>();
        let bytes_out = self.closed_traffic.bytes_out.load(Ordering::Relaxed)
            + followers.iter().map(|f| f.bytes_out).sum::<u64>();
        let (topics, topics_total) = self.topics.snapshot();
        Stats {
            channel: self.name.clone(),
            role: MemberRole::Leader,
            epoch: self.epoch(),
            leader: self.leader_info(),
            followers,
            topics,
            topics_total,
            calls: self.calls.snapshot(),
            bytes_in,
            bytes_out,
            last_failover: self.failover.get().copied(),
            publishes: self.publishes.stats(None),
        }
    }
}
