//! The election: port competition on 127.0.0.1. The winner claims its channel on the port server of
//! this process (several channels share one port), builds the real client and opens the channel
//! with its leader; a loser joins the leader as a follower.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::follower::{FollowerConn, JoinError};
use crate::io::transport::Endpoint;
use crate::leader::LeaderChannel;
use crate::options::{Options, Role};
use crate::protocol::RefusalCode;
use crate::role_change::unix_ms;
use crate::server::{self, Lease};
use crate::service::{BoxFuture, Schema, Service};
use crate::term::Term;

/// Builds the real client for a term; called wherever this process becomes leader.
pub type Factory = Arc<dyn Fn(Term) -> BoxFuture<Result<Arc<dyn Service>, String>> + Send + Sync>;

/// What one election round gave this handle.
pub(crate) enum Won {
    /// This process leads the channel.
    Leader(Arc<LeaderChannel>),
    /// This process follows the leader over this connection.
    Follower(Arc<FollowerConn>),
}

/// Why a round failed.
pub(crate) enum Lost {
    /// The endpoint is changing hands (nothing listens, or what listened went away before it
    /// answered): worth another round at once.
    Moving(Error),
    /// Worth another round after a pause (the leader is starting, dying, or frozen).
    Retry(Error),
    /// Will not get better by retrying.
    Fatal(Error),
}

/// Everything an election round needs.
pub(crate) struct Ballot<'a> {
    pub(crate) options: &'a Options,
    pub(crate) schema: &'static Schema,
    pub(crate) channel: &'a str,
    pub(crate) factory: &'a Factory,
    /// The highest epoch this handle has seen; a new term is numbered above it.
    pub(crate) last_epoch: u64,
    /// `true` at `create()`: a foreign process on the port is reported instead of retried.
    pub(crate) first: bool,
}

/// One election round.
pub(crate) async fn run(ballot: &Ballot<'_>) -> Result<Won, Lost> {
    if ballot.options.role != Role::Follower {
        let claimed = server::claim(
            &Endpoint::of(ballot.options),
            ballot.channel,
            ballot.options,
        );
        match claimed.map_err(|err| Lost::Fatal(err.into()))? {
            Some(lease) => return lead(ballot, lease).await,
            None if ballot.options.role == Role::Leader => {
                return Err(Lost::Fatal(Error::PortTaken {
                    port: ballot.options.port,
                    channel: ballot.channel.to_owned(),
                }));
            }
            None => {}
        }
    }
    follow(ballot).await
}

/// Single mode: the real client in this process, no port.
pub(crate) async fn single(ballot: &Ballot<'_>) -> Result<Arc<LeaderChannel>, Error> {
    let term = Term::new(next_epoch(ballot.last_epoch));
    let service = build(ballot, &term).await?;
    Ok(LeaderChannel::new(
        ballot.channel.to_owned(),
        ballot.schema,
        ballot.options.clone(),
        term,
        service,
    ))
}

/// Builds the real client after winning, then opens the channel to followers: the port server hands
/// their connections to the new leader, which keeps the lease to give the channel up when it stops.
async fn lead(ballot: &Ballot<'_>, lease: Lease) -> Result<Won, Lost> {
    let epoch = next_epoch(ballot.last_epoch);
    let term = Term::new(epoch);
    match build(ballot, &term).await {
        Ok(service) => {
            let channel = LeaderChannel::new(
                ballot.channel.to_owned(),
                ballot.schema,
                ballot.options.clone(),
                term,
                service,
            );
            lease.open(channel.clone());
            channel.hold(lease);
            tracing::info!(
                channel = ballot.channel,
                port = ballot.options.port,
                epoch,
                "became leader"
            );
            Ok(Won::Leader(channel))
        }
        Err(err) => {
            lease.fail(err.to_string());
            Err(Lost::Fatal(err))
        }
    }
}

async fn build(ballot: &Ballot<'_>, term: &Term) -> Result<Arc<dyn Service>, Error> {
    (ballot.factory)(term.clone())
        .await
        .map_err(|message| Error::Factory {
            channel: ballot.channel.to_owned(),
            message,
        })
}

/// Joins the leader that holds the port.
async fn follow(ballot: &Ballot<'_>) -> Result<Won, Lost> {
    let port = ballot.options.port;
    // At `create()` whatever holds the port is reported; during a failover it is most likely the old
    // leader, frozen or dying, so the round is retried and calls see "no leader" meanwhile.
    let unusable = |found: String, waited: Duration| {
        if ballot.first {
            Lost::Fatal(Error::ForeignPeer { port, found })
        } else {
            Lost::Retry(no_leader(ballot, found, waited))
        }
    };
    match FollowerConn::join(ballot.options, ballot.schema, ballot.channel).await {
        Ok(conn) => Ok(Won::Follower(conn)),
        Err(JoinError::Unreachable(err)) => Err(Lost::Moving(no_leader(
            ballot,
            format!("{err}"),
            Duration::ZERO,
        ))),
        Err(closed @ JoinError::Closed) => Err(Lost::Moving(Error::ForeignPeer {
            port,
            found: closed.found().unwrap_or_default(),
        })),
        Err(silent @ JoinError::Silent(wait)) => {
            Err(unusable(silent.found().unwrap_or_default(), wait))
        }
        Err(other @ (JoinError::Unproven(_) | JoinError::Garbage(_))) => {
            Err(unusable(other.found().unwrap_or_default(), Duration::ZERO))
        }
        Err(JoinError::Refused(Error::Refused {
            code: RefusalCode::UnknownChannel,
            ..
        })) => Err(Lost::Retry(no_leader(
            ballot,
            "the port's leader has no such channel yet".to_owned(),
            Duration::ZERO,
        ))),
        // A leader that serves as many connections as it may can take this one later: wait for it.
        Err(JoinError::Refused(
            err @ Error::Refused {
                code: RefusalCode::TooManyConnections,
                ..
            },
        )) => Err(Lost::Retry(err)),
        Err(JoinError::Refused(err @ Error::Refused { .. })) if !ballot.first => {
            Err(Lost::Retry(err))
        }
        Err(JoinError::Refused(err)) => Err(Lost::Fatal(err)),
    }
}

fn no_leader(ballot: &Ballot<'_>, reason: String, waited: Duration) -> Error {
    tracing::debug!(
        channel = ballot.channel,
        port = ballot.options.port,
        reason,
        "no leader reachable"
    );
    Error::NoLeader {
        port: ballot.options.port,
        channel: ballot.channel.to_owned(),
        waited_ms: waited.as_millis() as u64,
        reason,
    }
}

/// A new term's number: above every term seen, and above the clock in milliseconds so that a process
/// that saw none still numbers its term above earlier ones.
fn next_epoch(last: u64) -> u64 {
    unix_ms(SystemTime::now()).max(last.saturating_add(1))
}

/// Rounds retried at once while the endpoint changes hands, and then after a millisecond, before
/// the pauses of real trouble.
const AT_ONCE: u32 = 8;
const AFTER_A_MILLISECOND: u32 = 4;

/// The pauses between the rounds of one election.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    /// Rounds lost to real trouble (a foreign process, a refusal, a frozen leader).
    troubled: u32,
    /// Rounds lost while the endpoint changed hands.
    moving: u32,
}

impl Retries {
    /// How long to wait after `lost` before the next round: nothing (`Duration::ZERO`, after a
    /// yield) while the endpoint changes hands, as when a leader has just died and the survivors
    /// race for its place, so that failover sleeps on no transition; a growing pause otherwise.
    pub(crate) fn pause(&mut self, lost: &Lost) -> Duration {
        if let Lost::Moving(_) = lost {
            self.moving += 1;
            if self.moving <= AT_ONCE {
                return Duration::ZERO;
            }
            if self.moving <= AT_ONCE + AFTER_A_MILLISECOND {
                return Duration::from_millis(1);
            }
        }
        let pause = backoff(self.troubled);
        self.troubled += 1;
        pause
    }

    /// Rounds lost so far.
    pub(crate) fn lost(&self) -> u32 {
        self.troubled + self.moving
    }

    /// Rounds lost so far to real trouble, or to a change of hands that went on too long.
    pub(crate) fn troubled(&self) -> u32 {
        self.troubled
    }
}

/// Waits `pause`; a zero pause only lets the other tasks of this thread run first.
pub(crate) async fn wait(pause: Duration) {
    if pause.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(pause).await;
    }
}

/// A pause between rounds: 20 ms doubled per failed round up to one second, with ±50 % jitter.
fn backoff(round: u32) -> Duration {
    crate::backoff::pause(Duration::from_millis(20), Duration::from_secs(1), round)
}
