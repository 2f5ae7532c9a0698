//! [`Stats`]: a snapshot of one channel, filled by its leader, as
//! [`Handle::stats`](crate::Handle::stats) returns it (a follower asks the leader over the wire).

use serde::{Deserialize, Serialize};

use crate::role_change::{LeaderInfo, MemberRole};

/// A snapshot of a channel: who leads, who follows, what is subscribed, how much is served.
///
/// Everything but `role` is the leader's view; `role` is the asking process's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// The channel's name.
    pub channel: String,
    /// The asking process's role.
    pub role: MemberRole,
    /// The leadership term.
    pub epoch: u64,
    /// The leader.
    pub leader: LeaderInfo,
    /// The followers connected to the leader now.
    pub followers: Vec<FollowerStats>,
    /// The topics the leader serves, with their subscribers: the first 256 by method and key.
    pub topics: Vec<TopicStats>,
    /// How many topics the leader serves, listed or not.
    #[serde(default)]
    pub topics_total: usize,
    /// The calls of this term on the leader's real client: its own process's and its followers'.
    pub calls: CallStats,
    /// Bytes the leader read from its followers in this term.
    pub bytes_in: u64,
    /// Bytes the leader wrote to its followers in this term.
    pub bytes_out: u64,
    /// The failover that began this term, if one did (a term begun at start-up or by a planned
    /// handover has none).
    pub last_failover: Option<Failover>,
    /// The publishes the leader remembers, to send again when its real client's upstream comes
    /// back ([`Term::upstream_restored`](crate::Term::upstream_restored)): its own process's and
    /// its followers'.
    #[serde(default)]
    pub publishes: PublishStats,
}

/// One follower connection of the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FollowerStats {
    /// The follower's process id; `None` for a follower that does not say it (the Node
    /// package's).
    pub pid: Option<u32>,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// Its publishes the leader remembers (forgotten when it leaves), within
    /// [`max_publishes_per_follower`](crate::Options::max_publishes_per_follower) and
    /// [`max_publish_bytes_per_follower`](crate::Options::max_publish_bytes_per_follower).
    #[serde(default)]
    pub publishes: PublishStats,
}

/// Remembered publishes: one per method and arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PublishStats {
    /// How many.
    pub count: u64,
    /// The bytes of their arguments.
    pub bytes: u64,
}

/// One topic: a subscribe method and its arguments' key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TopicStats {
    /// The subscribe method.
    pub method: String,
    /// The subscription key (the arguments' canonical JSON, prefixed as the Node package does).
    pub key: String,
    /// How many subscriptions share it: the leader's own, and one per following process.
    pub subscribers: usize,
}

/// Calls on the real client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallStats {
    /// Answered with the method's value.
    pub served: u64,
    /// Answered with an error (the method's own or the runtime's), past their deadline, or
    /// cancelled when their follower left.
    pub failed: u64,
    /// Running now.
    pub in_flight: u64,
}

/// A failover: the leader was lost, and this process took over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Failover {
    /// When this process saw the old leader gone, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// From then until this process led, in microseconds.
    pub took_us: u64,
}

/// Several lines for people: the channel, its leader and term, its followers, topics, calls,
/// bytes, and the failover that began the term.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pid = |pid: Option<u32>| pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string());
        writeln!(f, "channel `{}`", self.channel)?;
        writeln!(
            f,
            "  leader: pid {}, epoch {}, leading for {}",
            pid(self.leader.pid),
            self.epoch,
            self.leader.since_ms.map_or_else(|| "?".to_owned(), age)
        )?;
        write!(f, "  followers: {}", self.followers.len())?;
        for (i, follower) in self.followers.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            let who = follower
                .pid
                .map_or_else(|| "a follower without a pid".to_owned(), |p| p.to_string());
            write!(
                f,
                "{sep}{who} (in {}, out {}, {} publishes)",
                Bytes(follower.bytes_in),
                Bytes(follower.bytes_out),
                follower.publishes.count
            )?;
        }
        writeln!(f)?;
        write!(f, "  topics: {}", self.topics_total.max(self.topics.len()))?;
        if self.topics_total > self.topics.len() {
            write!(f, " (the first {} listed)", self.topics.len())?;
        }
        writeln!(f)?;
        for topic in &self.topics {
            writeln!(
                f,
                "    {} {}: {} subscriber(s)",
                topic.method, topic.key, topic.subscribers
            )?;
        }
        writeln!(
            f,
            "  calls: {} served, {} failed, {} in flight",
            self.calls.served, self.calls.failed, self.calls.in_flight
        )?;
        writeln!(
            f,
            "  publishes remembered: {} ({})",
            self.publishes.count,
            Bytes(self.publishes.bytes)
        )?;
        write!(
            f,
            "  bytes: in {}, out {}",
            Bytes(self.bytes_in),
            Bytes(self.bytes_out)
        )?;
        if let Some(failover) = self.last_failover {
            write!(
                f,
                "\n  began with a failover {} ago, which took {:.2} ms",
                age(failover.at_ms),
                failover.took_us as f64 / 1000.0
            )?;
        }
        Ok(())
    }
}

/// How long ago a time in milliseconds since the Unix epoch was.
fn age(since_ms: u64) -> String {
    let now = crate::role_change::unix_ms(std::time::SystemTime::now());
    let seconds = now.saturating_sub(since_ms) as f64 / 1000.0;
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

/// A byte count in B, KiB or MiB.
struct Bytes(u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            n if n >= 1 << 20 => write!(f, "{:.1} MiB", n as f64 / f64::from(1 << 20)),
            n if n >= 1 << 10 => write!(f, "{:.1} KiB", n as f64 / f64::from(1 << 10)),
            n => write!(f, "{n} B"),
        }
    }
}
