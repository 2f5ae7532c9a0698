//! The port server: this process's table of the endpoints it listens on (loopback ports or Unix
//! sockets), and on each the acceptor
//! that routes every socket by its `register_channel` to that channel's leader in this process.
//!
//! The server does not know what a leader is: a channel is opened with anything that can [`Serve`]
//! a registered connection (the election opens it with the leader it built).

mod challenge;
mod inspect;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::Secret;
use crate::io::throttle::Throttle;
use crate::io::transport::{self, Accepted, Endpoint, FrameReader, Listener, WriteHalf};
use crate::io::writer;
use crate::options::Options;
use crate::protocol::budget::Budget;
use crate::protocol::conn::{RegisterChannel, RegisterChannelRes};
use crate::protocol::{
    ConnObject, FrameCodec, Kind, Packet, RefusalCode, follower_codec, register_answer,
};
use crate::stats::Stats;
pub(crate) use inspect::INSPECT_CHANNEL;

/// Takes over the connections registered on one channel: the channel's leader.
pub(crate) trait Serve: Send + Sync {
    /// Serves a connection whose first packet, `registration`, asked for this channel; the rest of
    /// the connection is `reader` and `writer`.
    fn serve(self: Arc<Self>, reader: FrameReader, writer: WriteHalf, registration: Registration);

    /// The channel's snapshot, for an inspecting process.
    fn stats(&self) -> Stats;
}

/// What a follower said in its `register_channel`.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The request's id, reused by the answer.
    pub(crate) id: i64,
    /// The request's timeout, copied into the answer.
    pub(crate) timeout: i32,
    /// The follower's schema fingerprint.
    pub(crate) fingerprint: Option<String>,
    /// The follower's codec name.
    pub(crate) codec: Option<String>,
    /// The follower's process id.
    pub(crate) pid: Option<u32>,
    /// The follower's nonce, asking the leader to prove the cluster secret.
    pub(crate) nonce: Option<String>,
    /// The endpoint's budget of buffered bytes, which the connection's output counts against.
    pub(crate) budget: Budget,
    /// Holds the connection's place: among those that have not proved themselves, then under the
    /// port's connection cap while it lives.
    pub(crate) _permit: OwnedSemaphorePermit,
}

impl Registration {
    /// Reads a connection's first packet: the channel asked for and the registration, or `None` if it
    /// is not a `register_channel` request.
    pub(crate) fn from_packet(
        packet: Packet,
        permit: OwnedSemaphorePermit,
        budget: Budget,
    ) -> Option<(String, Registration)> {
        let (
            Kind::Request,
            ConnObject::RegisterChannel(RegisterChannel {
                channel_name,
                fingerprint,
                codec,
                pid,
                nonce,
                proof: _,
            }),
        ) = (packet.kind, packet.conn)
        else {
            return None;
        };
        let registration = Registration {
            id: packet.id,
            timeout: packet.timeout,
            fingerprint,
            codec,
            pid,
            nonce,
            budget,
            _permit: permit,
        };
        Some((channel_name, registration))
    }
}

/// The port servers of this process, by endpoint.
static PORTS: LazyLock<Mutex<HashMap<Endpoint, Weak<PortServer>>>> = LazyLock::new(Mutex::default);

/// A channel reserved for a leader of this process on a port server: registrations wait until it
/// is [opened](Self::open) or [failed](Self::fail); [`release`](Self::release) gives it up.
pub(crate) struct Lease {
    server: Arc<PortServer>,
    channel: String,
    slot: watch::Sender<Slot>,
}

/// Takes `channel` on this process's server of `endpoint`, binding it if this process has none
/// (with the limits of `options`); `None` if someone leads it already: another process holds the
/// endpoint, or another handle of this process has the channel.
pub(crate) fn claim(
    endpoint: &Endpoint,
    channel: &str,
    options: &Options,
) -> std::io::Result<Option<Lease>> {
    let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
    let server = match ports
        .get(endpoint)
        .and_then(Weak::upgrade)
        .filter(|s| !s.is_stopped())
    {
        Some(server) => server,
        None => match transport::bind(endpoint)? {
            Some(listener) => {
                let server = PortServer::start(listener, endpoint.clone(), options);
                ports.insert(endpoint.clone(), Arc::downgrade(&server));
                server
            }
            None => return Ok(None),
        },
    };
    Ok(server.add_channel(channel).map(|slot| Lease {
        server,
        channel: channel.to_owned(),
        slot,
    }))
}

impl Lease {
    /// Opens the channel: registrations go to `leader` from now on.
    pub(crate) fn open(&self, leader: Arc<dyn Serve>) {
        self.slot.send_replace(Slot::Ready(leader));
    }

    /// The channel's leader could not start: registrations are refused with `message`, and the
    /// channel is given up.
    pub(crate) fn fail(self, message: String) {
        self.slot.send_replace(Slot::Failed(message));
        self.release();
    }

    /// Gives the channel up, releasing the port when no channel is left on it.
    pub(crate) fn release(&self) {
        let server = &self.server;
        if server.remove_channel(&self.channel) {
            let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
            if ports
                .get(&server.endpoint)
                .is_some_and(|s| s.ptr_eq(&Arc::downgrade(server)))
            {
                ports.remove(&server.endpoint);
            }
        }
    }
}

/// The state of one channel on the port.
#[derive(Clone)]
enum Slot {
    /// Its real client is being built; registrations wait.
    Starting,
    /// Serving.
    Ready(Arc<dyn Serve>),
    /// Its real client failed to start; registrations are refused with this message.
    Failed(String),
}

/// How long to pause after a failed `accept` (for example, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The largest first frame (`register_channel`, a few hundred bytes) of a connection: a peer that has
/// not registered cannot make the leader buffer a whole `max_frame_size` frame.
const REGISTER_MAX_FRAME: usize = 64 * 1024;

/// `configured`, lowered so that accepted connections stay within [`FD_SHARE`] of the process's
/// file descriptor limit, less the descriptors open now (at least one connection is allowed).
fn connection_cap(configured: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let open = std::fs::read_dir("/proc/self/fd").map(Iterator::count);
    match (limit, open) {
        (Some(limit), Ok(open)) => {
            let share = limit.saturating_mul(FD_SHARE.0) / FD_SHARE.1;
            let room = usize::try_from(share.saturating_sub(open as u64)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        _ => configured,
    }
}

/// One listening endpoint and the channels this process leads on it.
struct PortServer {
    endpoint: Endpoint,
    /// This process's user: the only one served.
    uid: u32,
    channels: Mutex<HashMap<String, watch::Sender<Slot>>>,
    stop: CancellationToken,
    limits: Limits,
    /// Limits the warnings that peers can provoke (bad first frames, connections over the cap).
    warnings: Throttle,
    /// The cluster secret every registration must prove; `None` with auth off.
    secret: Option<Secret>,
    /// The bytes buffered for all the connections: large frames arriving, output not yet written.
    budget: Budget,
}

/// The share of the process's file descriptor limit that follower connections may use: the rest is
/// left to the process itself (its own sockets and files, the follower side of other channels).
const FD_SHARE: (u64, u64) = (3, 4);

#[derive(Clone)]
struct Limits {
    max_frame_size: usize,
    register_timeout: Duration,
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// Connections that have not yet proved themselves (registered, and with auth on proved the
    /// secret): a budget of their own, so that they never take a member's place.
    unproven: Arc<Semaphore>,
    max_unproven: usize,
    /// How long an inspect connection may stay silent: three heartbeat intervals.
    inspect_idle: Duration,
}

impl PortServer {
    /// Starts serving `listener`; the limits come from the options of the first channel.
    fn start(listener: Listener, endpoint: Endpoint, options: &Options) -> Arc<Self> {
        let max_connections = connection_cap(options.max_connections);
        if max_connections < options.max_connections {
            tracing::debug!(
                %endpoint,
                max_connections,
                configured = options.max_connections,
                "connection cap lowered to stay within the file descriptor limit"
            );
        }
        let server = Arc::new(PortServer {
            endpoint,
            uid: transport::own_uid(),
            channels: Mutex::default(),
            stop: CancellationToken::new(),
            warnings: Throttle::for_peer_warnings(),
            secret: options.secret.clone(),
            budget: Budget::new(options.max_buffered_bytes),
            limits: Limits {
                max_frame_size: options.max_frame_size,
                register_timeout: options.register_timeout,
                connections: Arc::new(Semaphore::new(max_connections)),
                max_connections,
                unproven: Arc::new(Semaphore::new(options.max_unproven_connections.max(1))),
                max_unproven: options.max_unproven_connections.max(1),
                inspect_idle: options.heartbeat_interval * 3,
            },
        });
        tokio::spawn(Arc::clone(&server).accept_loop(listener));
        server
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<Slot>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `channel` for a leader of this process; `None` if one already has it.
    fn add_channel(&self, channel: &str) -> Option<watch::Sender<Slot>> {
        let mut channels = self.channels();
        if channels.contains_key(channel) {
            return None;
        }
        let (tx, _) = watch::channel(Slot::Starting);
        channels.insert(channel.to_owned(), tx.clone());
        Some(tx)
    }

    /// Removes `channel`; returns whether no channel is left (the port is then released).
    fn remove_channel(&self, channel: &str) -> bool {
        let mut channels = self.channels();
        channels.remove(channel);
        let empty = channels.is_empty();
        if empty {
            self.stop.cancel();
        }
        empty
    }

    /// Whether the server stopped listening.
    fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    async fn accept_loop(self: Arc<Self>, listener: Listener) {
        tracing::debug!(endpoint = %self.endpoint, "leading the port");
        loop {
            let accepted = tokio::select! {
                () = self.stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok(accepted) => self.admit(accepted),
                Err(err) => {
                    if let Some(left_out) = self.warnings.admit() {
                        tracing::warn!(endpoint = %self.endpoint, error = %err, left_out, "accept failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        tracing::debug!(endpoint = %self.endpoint, "released the port");
    }

    /// Starts the handshake of a new connection within the budget of connections that have not
    /// proved themselves; closes it at once when that budget is spent, or when the kernel says it
    /// comes from another user.
    fn admit(self: &Arc<Self>, accepted: Accepted) {
        let peer = &accepted.peer;
        if let Some(uid) = accepted.uid.filter(|&uid| uid != self.uid) {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(endpoint = %self.endpoint, peer, uid, left_out, "closing a connection of another user");
            }
            return;
        }
        match Arc::clone(&self.limits.unproven).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(Arc::clone(self).handshake(accepted, permit));
            }
            Err(_) => {
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(endpoint = %self.endpoint, peer, limit = self.limits.max_unproven, left_out, "too many connections have not registered yet; closing a new one");
                }
            }
        }
    }

    /// Reads the first packet of a connection, has it prove the cluster secret (with auth on), then
    /// gives it a place under the connection cap (or a `too_many_connections` refusal) and hands the
    /// socket to its channel's leader. `permit` holds its place among the connections that have not
    /// proved themselves until then.
    async fn handshake(self: Arc<Self>, accepted: Accepted, permit: OwnedSemaphorePermit) {
        let Accepted {
            read, mut write, ..
        } = accepted;
        let max_frame_size = self.limits.max_frame_size;
        let mut reader = transport::reader(read, max_frame_size.min(REGISTER_MAX_FRAME));
        let first = tokio::select! {
            () = self.stop.cancelled() => return,
            first = tokio::time::timeout(self.limits.register_timeout, reader.next()) => first,
        };
        let packet = match first {
            Err(_) => {
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(endpoint = %self.endpoint, timeout = ?self.limits.register_timeout, left_out, "closing a connection that did not register in time");
                }
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(err))) => {
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(endpoint = %self.endpoint, error = %err, left_out, "closing a connection: bad first frame");
                }
                return;
            }
            Ok(Some(Ok(packet))) => packet,
        };
        let Some((channel_name, mut registration)) =
            Registration::from_packet(packet, permit, self.budget.clone())
        else {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(
                    endpoint = %self.endpoint,
                    left_out,
                    "closing a connection whose first packet is not a register_channel request"
                );
            }
            return;
        };
        if let Some(secret) = &self.secret {
            let proven = self
                .challenge(
                    &mut reader,
                    &mut write,
                    &registration,
                    &channel_name,
                    secret,
                )
                .await;
            if !proven {
                return;
            }
        }
        // Proved: from here on the connection holds a place under the connection cap instead.
        match Arc::clone(&self.limits.connections).try_acquire_owned() {
            Ok(member) => registration._permit = member,
            Err(_) => {
                let limit = self.limits.max_connections;
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        limit,
                        left_out,
                        "connection cap reached; refusing a new connection"
                    );
                }
                let message = format!("the leader serves {limit} connections already");
                return refuse(
                    &mut write,
                    &registration,
                    RefusalCode::TooManyConnections,
                    message,
                )
                .await;
            }
        }
        // Registered: the whole frame limit applies from here on (bytes already read are kept).
        let budget = self.budget.clone();
        let reader = reader.map_decoder(|_| FrameCodec::new(max_frame_size).with_budget(budget));
        if channel_name == INSPECT_CHANNEL {
            let idle = self.limits.inspect_idle;
            return self.serve_inspect(reader, write, registration, idle).await;
        }
        let slot = self
            .channels()
            .get(&channel_name)
            .map(watch::Sender::subscribe);
        let Some(mut slot) = slot else {
            tracing::debug!(endpoint = %self.endpoint, channel = %channel_name, "no leader of this channel here");
            return refuse(
                &mut write,
                &registration,
                RefusalCode::UnknownChannel,
                format!("no leader of channel `{channel_name}` on this port"),
            )
            .await;
        };
        let ready = tokio::select! {
            () = self.stop.cancelled() => return,
            ready = slot.wait_for(|s| !matches!(s, Slot::Starting)) => ready.map(|s| s.clone()),
        };
        match ready {
            Ok(Slot::Ready(leader)) => leader.serve(reader, write, registration),
            Ok(Slot::Failed(message)) => {
                refuse(
                    &mut write,
                    &registration,
                    RefusalCode::FactoryFailed,
                    message,
                )
                .await
            }
            Ok(Slot::Starting) | Err(_) => {
                refuse(
                    &mut write,
                    &registration,
                    RefusalCode::UnknownChannel,
                    format!("the leader of `{channel_name}` stopped"),
                )
                .await;
            }
        }
    }
}

/// Answers a registration with a refusal, then closes the connection.
async fn refuse(
    write: &mut WriteHalf,
    registration: &Registration,
    code: RefusalCode,
    message: String,
) {
    // A follower of the Node package reads the refusal from the application object.
    let app = follower_codec(registration.codec.as_deref())
        .map(|codec| register_answer(codec, Some((&code, &message))))
        .unwrap_or_default();
    let conn = ConnObject::RegisterChannelRes(RegisterChannelRes {
        success: Some(false),
        epoch: None,
        code: Some(code),
        error: Some(message),
        ..RegisterChannelRes::default()
    });
    if let Ok(frame) = writer::encode(&Packet::response(
        registration.id,
        registration.timeout,
        conn,
        app,
    )) {
        let _ = write.write_all(&frame).await;
    }
    let _ = write.shutdown().await;
}

#[cfg(test)]
mod fd_tests {
    use super::*;

    /// The cap leaves a quarter of the descriptor limit, and those already open, to the process.
    #[test]
    fn the_connection_cap_stays_within_the_file_descriptor_limit() {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .expect("a finite limit");
        let open = std::fs::read_dir("/proc/self/fd").expect("procfs").count() as u64;
        let cap = connection_cap(usize::MAX) as u64;
        assert!(cap >= 1);
        assert!(
            cap + open <= (limit * FD_SHARE.0 / FD_SHARE.1).max(open + 1),
            "cap {cap} with {open} open, limit {limit}"
        );
        assert_eq!(connection_cap(1), 1, "a smaller configured cap stays");
    }
}
