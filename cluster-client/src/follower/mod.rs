//! One follower connection to a leader. This file holds the connection and its read loop, which
//! hands answers to the calls waiting for them and item pushes to the subscriptions; the rest is
//! split by concern: [`join`] (connecting and registering), [`calls`] (calls in flight and their
//! deadlines, over [`pending`]), [`topics`] (the subscriptions of this process on that leader) and
//! [`heartbeat`].

mod calls;
mod heartbeat;
mod join;
mod pending;
mod stats;
mod topics;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::Error;
use crate::io::signal::Signal;
use crate::io::transport::FrameReader;
use crate::io::writer::Outbox;
use crate::options::Options;
use crate::protocol::conn::{LeaderLeaving, SubscribeReady, SubscribeResult};
use crate::protocol::ids::IdGen;
use crate::protocol::{ConnObject, Frame, Kind, Packet, ProtocolError};
use crate::role_change::LeaderInfo;
use calls::PendingCall;
use join::Accepted;
use pending::Pending;
use topics::Topics;

pub(crate) use calls::CallError;
pub(crate) use join::JoinError;

/// A live connection to the leader of one channel.
pub(crate) struct FollowerConn {
    options: Options,
    epoch: u64,
    push_ack: bool,
    /// Who leads.
    leader: LeaderInfo,
    outbox: Outbox,
    ids: IdGen,
    pending: Pending<PendingCall>,
    topics: Mutex<Topics>,
    /// Fires when the connection is gone, for whatever reason.
    lost: CancellationToken,
    /// Set with `lost`, readable without its lock (calls check it on every send).
    gone: AtomicBool,
    /// Set by [`close`](Self::close): this process left, the leader was not lost.
    closing: AtomicBool,
    /// Fires when the leader says it is leaving.
    leaving: CancellationToken,
    /// Set when the leaving leader's real client resigned.
    leader_resigned: AtomicBool,
    /// The sweeper's next wake-up, in nanoseconds after `born` (`u64::MAX`: none). One timer for
    /// the whole connection instead of one per call: a call lowers it, the sweeper resets it.
    sweep_at: AtomicU64,
    /// Wakes the sweeper when a call's deadline comes before `sweep_at`.
    sweep: Notify,
    born: Instant,
}

impl FollowerConn {
    /// A connection the leader accepted: starts its read loop, its call sweeper and (with
    /// `heartbeat_check`) its heartbeats.
    fn start(
        options: &Options,
        accepted: Accepted,
        outbox: Outbox,
        ids: IdGen,
        lost: CancellationToken,
        reader: FrameReader,
    ) -> Arc<Self> {
        let conn = Arc::new(FollowerConn {
            options: options.clone(),
            epoch: accepted.epoch,
            push_ack: accepted.push_ack,
            leader: accepted.leader,
            outbox,
            ids,
            pending: Pending::default(),
            topics: Mutex::default(),
            lost,
            gone: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            leaving: CancellationToken::new(),
            leader_resigned: AtomicBool::new(false),
            sweep_at: AtomicU64::new(u64::MAX),
            sweep: Notify::new(),
            born: Instant::now(),
        });
        // Every event of the connection's read loop carries who leads it.
        let span = tracing::info_span!(
            "leader_conn",
            role = "follower",
            epoch = conn.epoch,
            leader_pid = conn.leader.pid,
        );
        tokio::spawn(Arc::clone(&conn).read_loop(reader).instrument(span));
        tokio::spawn(Arc::clone(&conn).sweep_loop());
        if options.heartbeat_check {
            tokio::spawn(Arc::clone(&conn).heartbeat_loop());
        }
        conn
    }

    /// The leader's term.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Who leads.
    pub(crate) fn leader(&self) -> LeaderInfo {
        self.leader
    }

    /// Whether the leader is a member of the Node package, which names no pid at registration,
    /// says nothing of a topic's liveness and keeps no stats.
    fn leader_is_node(&self) -> bool {
        self.leader.pid.is_none()
    }

    /// Whether the connection is gone.
    pub(crate) fn is_lost(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Marks the connection gone and ends its tasks.
    fn mark_lost(&self) {
        self.gone.store(true, Ordering::Release);
        self.lost.cancel();
    }

    /// Resolves once the connection is gone.
    pub(crate) async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// Whether the leader said it leaves because its real client resigned.
    pub(crate) fn leader_resigned(&self) -> bool {
        self.leader_resigned.load(Ordering::Relaxed)
    }

    /// Resolves once the leader says it is leaving: a successor is to be elected, while this
    /// connection still answers its calls and pushes items.
    pub(crate) async fn leaving(&self) {
        self.leaving.cancelled().await;
    }

    /// Calls waiting for their answers.
    pub(crate) fn calls_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Closes the connection; calls in flight fail with [`Error::LeaderLost`].
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.mark_lost();
    }

    /// Reads the leader's frames until the connection is lost; then fails the calls in flight.
    async fn read_loop(self: Arc<Self>, mut reader: FrameReader) {
        let lost = Signal::on_cancel(&self.lost);
        loop {
            let next = tokio::select! {
                biased;
                next = reader.next() => next,
                () = lost.raised() => break,
            };
            let read = match next {
                Some(Ok(frame)) => self.on_frame(frame),
                Some(Err(err)) => Err(err),
                None => break,
            };
            match read {
                Ok(()) => {}
                // A reset is how a killed leader's connection usually ends: the leader is lost,
                // which the supervisor reports.
                Err(ProtocolError::Io(err)) => {
                    tracing::debug!(error = %err, "the leader's connection failed");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "bad frame from the leader; dropping the connection");
                    break;
                }
            }
        }
        self.mark_lost();
        // Unless this process closes the connection itself (then what is queued still goes), what
        // the socket has not taken stays here: calls not yet written can go to the next leader.
        if !self.closing.load(Ordering::Acquire) {
            self.outbox.seal();
        }
        for call in self.pending.drain() {
            let _ = call.tx.send(Err(Error::LeaderLost {
                method: call.method.to_owned(),
            }));
        }
    }

    /// An item push for a topic of this connection is known by its text and delivered without
    /// parsing; every other frame is parsed.
    fn on_frame(&self, frame: Frame) -> Result<(), ProtocolError> {
        if frame.header.kind == Kind::Request && self.deliver_known_push(&frame) {
            return Ok(());
        }
        self.on_packet(frame.into_packet()?);
        Ok(())
    }

    fn on_packet(&self, packet: Packet) {
        match packet.kind {
            Kind::Response => {
                if let Some(call) = self.pending.remove(packet.id) {
                    let _ = call.tx.send(Ok(packet));
                }
            }
            Kind::Request => match packet.conn {
                ConnObject::SubscribeResult(SubscribeResult {
                    key,
                    method,
                    end,
                    typed,
                    request,
                }) => {
                    let end = end.map(|reason| (reason, typed, request));
                    self.on_push(&key, method.as_deref(), end, packet.app);
                    self.ack_push(packet.id);
                }
                ConnObject::SubscribeReady(SubscribeReady {
                    key,
                    method,
                    request,
                }) => {
                    self.on_ready(&key, &method, request);
                }
                ConnObject::LeaderLeaving(LeaderLeaving { resigned }) => {
                    tracing::debug!(resigned, "the leader is leaving");
                    self.leader_resigned.store(resigned, Ordering::Relaxed);
                    self.leaving.cancel();
                }
                other => tracing::debug!(
                    kind = other.type_name(),
                    "ignoring an unexpected request from the leader"
                ),
            },
        }
    }
}

/// A duration as the header's signed 32-bit milliseconds.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
