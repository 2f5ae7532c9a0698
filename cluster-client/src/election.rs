//! The election: port competition on 127.0.0.1, and the per-process table of port servers so that
//! several channels share one port.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::error::Error;
use crate::follower::{FollowerConn, JoinError};
use crate::leader::LeaderChannel;
use crate::options::{Options, Role};
use crate::server::{PortServer, Slot};
use crate::service::{BoxFuture, Schema, Service};

/// Builds the real client; called wherever this process becomes leader.
pub type Factory = Arc<dyn Fn() -> BoxFuture<Result<Arc<dyn Service>, String>> + Send + Sync>;

/// The port servers of this process, by port.
static PORTS: LazyLock<Mutex<HashMap<u16, Weak<PortServer>>>> = LazyLock::new(Mutex::default);

/// What one election round gave this handle.
pub(crate) enum Won {
    /// This process leads the channel.
    Leader(Arc<LeaderChannel>),
    /// This process follows the leader over this connection.
    Follower(Arc<FollowerConn>),
}

/// Why a round failed.
pub(crate) enum Lost {
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

/// The outcome of trying to take the channel in this process.
enum Claim {
    /// The channel is ours to lead; the server routes its registrations to this slot.
    Lead(Arc<PortServer>, watch::Sender<Slot>),
    /// Someone (another process, or another handle here) leads it.
    Taken,
}

/// One election round.
pub(crate) async fn run(ballot: &Ballot<'_>) -> Result<Won, Lost> {
    if ballot.options.role != Role::Follower {
        match claim(ballot).map_err(Lost::Fatal)? {
            Claim::Lead(server, slot) => return lead(ballot, server, slot).await,
            Claim::Taken if ballot.options.role == Role::Leader => {
                return Err(Lost::Fatal(Error::PortTaken {
                    port: ballot.options.port,
                    channel: ballot.channel.to_owned(),
                }));
            }
            Claim::Taken => {}
        }
    }
    follow(ballot).await
}

/// Single mode: the real client in this process, no port.
pub(crate) async fn single(ballot: &Ballot<'_>) -> Result<Arc<LeaderChannel>, Error> {
    let service = build(ballot).await?;
    Ok(LeaderChannel::new(
        ballot.channel.to_owned(),
        ballot.schema,
        ballot.options.clone(),
        next_epoch(ballot.last_epoch),
        service,
    ))
}

/// Takes the channel on a port server of this process, binding the port if this process has none.
fn claim(ballot: &Ballot<'_>) -> Result<Claim, Error> {
    let port = ballot.options.port;
    let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
    let server = match ports
        .get(&port)
        .and_then(Weak::upgrade)
        .filter(|s| !s.is_stopped())
    {
        Some(server) => server,
        None => match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let server = PortServer::start(listener, port, ballot.options);
                ports.insert(port, Arc::downgrade(&server));
                server
            }
            Err(err) if err.kind() == ErrorKind::AddrInUse => return Ok(Claim::Taken),
            Err(err) => return Err(err.into()),
        },
    };
    Ok(match server.add_channel(ballot.channel) {
        Some(slot) => Claim::Lead(server, slot),
        None => Claim::Taken,
    })
}

/// Builds the real client after winning, then opens the channel to followers.
async fn lead(
    ballot: &Ballot<'_>,
    server: Arc<PortServer>,
    slot: watch::Sender<Slot>,
) -> Result<Won, Lost> {
    match build(ballot).await {
        Ok(service) => {
            let epoch = next_epoch(ballot.last_epoch);
            let channel = LeaderChannel::new(
                ballot.channel.to_owned(),
                ballot.schema,
                ballot.options.clone(),
                epoch,
                service,
            );
            channel.attach_server(server);
            slot.send_replace(Slot::Ready(Arc::clone(&channel)));
            tracing::info!(
                channel = ballot.channel,
                port = ballot.options.port,
                epoch,
                "became leader"
            );
            Ok(Won::Leader(channel))
        }
        Err(err) => {
            slot.send_replace(Slot::Failed(err.to_string()));
            release(&server, ballot.channel);
            Err(Lost::Fatal(err))
        }
    }
}

async fn build(ballot: &Ballot<'_>) -> Result<Arc<dyn Service>, Error> {
    (ballot.factory)().await.map_err(|message| Error::Factory {
        channel: ballot.channel.to_owned(),
        message,
    })
}

/// Gives the channel up on its port server, releasing the port when no channel is left.
pub(crate) fn release(server: &Arc<PortServer>, channel: &str) {
    if server.remove_channel(channel) {
        let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
        if ports
            .get(&server.port())
            .is_some_and(|s| s.ptr_eq(&Arc::downgrade(server)))
        {
            ports.remove(&server.port());
        }
    }
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
        Err(JoinError::Unreachable(err)) => Err(Lost::Retry(no_leader(ballot, format!("{err}"), Duration::ZERO))),
        Err(JoinError::Closed) => Err(Lost::Retry(Error::ForeignPeer {
            port,
            found: "a process that accepted the connection and closed it without answering register_channel".to_owned(),
        })),
        Err(JoinError::Silent(wait)) => Err(unusable(
            format!(
                "a process that accepted the connection but answered nothing to register_channel within {} ms",
                wait.as_millis()
            ),
            wait,
        )),
        Err(JoinError::Garbage(what)) => Err(unusable(
            format!("a process that does not speak this protocol ({what})"),
            Duration::ZERO,
        )),
        Err(JoinError::Refused(Error::Refused { code, .. })) if code == "unknown_channel" => {
            Err(Lost::Retry(no_leader(ballot, "the port's leader has no such channel yet".to_owned(), Duration::ZERO)))
        }
        Err(JoinError::Refused(err @ Error::Refused { .. })) if !ballot.first => Err(Lost::Retry(err)),
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    now.max(last.saturating_add(1))
}

/// A pause between rounds: `base` doubled per failed round up to one second, with ±50 % jitter.
pub(crate) fn backoff(round: u32) -> Duration {
    use std::hash::BuildHasher;
    let base = Duration::from_millis(20)
        .saturating_mul(1 << round.min(6))
        .min(Duration::from_secs(1));
    let jitter = std::collections::hash_map::RandomState::new().hash_one(round) % 1000;
    base / 2 + base.mul_f64(jitter as f64 / 1000.0)
}
