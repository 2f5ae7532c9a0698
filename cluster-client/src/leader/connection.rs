//! Serving one follower connection, handed over by the port server: the answer to its registration,
//! then its calls, subscriptions and heartbeats until the follower leaves, falls silent, sends a bad
//! frame, or the leader stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::publishes::Publisher;
use super::topics::Owner;
use super::{Follower, LeaderChannel};
use crate::io::clock;
use crate::io::signal::Signal;
use crate::io::transport::{FrameReader, WriteHalf};
use crate::io::writer::{self, Flush, Outbox, TrySendError};
use crate::protocol::args::Args;
use crate::protocol::conn::{
    ChannelStats, ChannelStatsRes, Heartbeat, HeartbeatRes, Invoke, Subscribe, SubscribeResultRes,
    UnSubscribe,
};
use crate::protocol::{ConnObject, HEADER_LEN, Kind, Packet, read_invoke};
use crate::server::{Registration, Serve};
use crate::stats::Stats;

/// State of one follower connection.
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) outbox: Outbox,
    pub(super) stop: CancellationToken,
    /// Calls of this follower running in their own task.
    pub(super) in_flight: Arc<AtomicUsize>,
    /// Bytes read from this follower.
    pub(super) bytes_in: Arc<AtomicU64>,
    /// More frames were already read after the one being handled.
    more_read: AtomicBool,
}

impl Conn {
    /// Answers to a frame with more read behind it wait for the writer task, which sends the whole
    /// burst's answers in one write; the last answer of a burst goes out at once.
    pub(super) fn flush(&self) -> Flush {
        if self.more_read.load(Ordering::Relaxed) {
            Flush::Soon
        } else {
            Flush::Now
        }
    }
}

/// Ticks of the connection's timer in one idle limit (three heartbeat intervals).
const SILENCE_STEPS: u32 = 4;

/// Ticks of the connection's timer in one frame deadline.
const FRAME_STEPS: u32 = 2;

/// The shortest tick of the connection's timer, whatever the options.
const MIN_STEP: Duration = Duration::from_millis(10);

impl Serve for LeaderChannel {
    /// Takes over a registered follower connection.
    fn serve(self: Arc<Self>, reader: FrameReader, writer: WriteHalf, registration: Registration) {
        let stop = self.stop.child_token();
        let conn = Conn {
            id: self.next_conn_id(),
            outbox: writer::spawn_within(writer, stop.clone(), Some(registration.budget.clone())),
            stop,
            in_flight: Arc::default(),
            bytes_in: Arc::default(),
            more_read: AtomicBool::new(false),
        };
        let this = Arc::clone(&self);
        // Every event of the connection, and of the calls it starts, carries who is on each end.
        let span = tracing::info_span!(
            "follower_conn",
            channel = %self.name,
            role = "leader",
            epoch = self.epoch(),
            conn = conn.id,
            peer_pid = registration.pid,
        );
        self.tasks.spawn(
            async move {
                if this.admit(&conn, &registration).await {
                    let follower = Follower {
                        pid: registration.pid,
                        outbox: conn.outbox.clone(),
                        bytes_in: Arc::clone(&conn.bytes_in),
                    };
                    this.add_follower(conn.id, follower);
                    this.read_loop(&conn, reader).await;
                    this.followers().remove(&conn.id);
                    this.moved.notify_waiters();
                    this.closed_traffic
                        .add(conn.bytes_in.load(Ordering::Relaxed), conn.outbox.sent());
                }
                conn.stop.cancel();
                this.topics.detach(None, Owner::Conn(conn.id));
                this.publishes.forget(Publisher::Conn(conn.id));
                drop(registration);
                tracing::debug!("follower connection closed");
            }
            .instrument(span),
        );
    }

    fn stats(&self) -> Stats {
        LeaderChannel::stats(self)
    }
}

impl LeaderChannel {
    async fn read_loop(self: &Arc<Self>, conn: &Conn, mut reader: FrameReader) {
        let idle = self
            .options
            .heartbeat_check
            .then(|| self.options.heartbeat_interval * 3);
        let frame_timeout = self.options.frame_timeout;
        // One timer for the connection, ticking every quarter of the idle limit (and every half of
        // the frame deadline), rather than one per packet; a packet only sets `heard` (no clock
        // read). The connection closes after between one and one and a quarter idle limits of
        // silence, and when a frame is not whole one and a half frame deadlines after its first
        // bytes.
        let step = idle.map_or(Duration::MAX, |idle| idle / SILENCE_STEPS);
        let step = step.min(frame_timeout / FRAME_STEPS).max(MIN_STEP);
        let tick = clock::sleep_until(Instant::now() + step);
        let stopped = Signal::on_cancel(&conn.stop);
        tokio::pin!(tick);
        let (mut heard, mut heard_at) = (false, Instant::now());
        loop {
            let next = tokio::select! {
                biased;
                next = reader.next() => next,
                () = stopped.raised() => return,
                () = &mut tick => {
                    let now = Instant::now();
                    if std::mem::take(&mut heard) {
                        heard_at = now;
                    }
                    if let Some(idle) = idle.filter(|&idle| now - heard_at >= idle) {
                        if let Some(left_out) = self.warnings.admit() {
                            tracing::warn!(channel = %self.name, conn = conn.id, ?idle, left_out, "closing a follower connection silent for three heartbeat intervals");
                        }
                        return;
                    }
                    let stalled = reader.decoder().partial_since();
                    if stalled.is_some_and(|since| now - since >= frame_timeout) {
                        if let Some(left_out) = self.warnings.admit() {
                            tracing::warn!(channel = %self.name, conn = conn.id, ?frame_timeout, left_out, "closing a follower connection: a frame did not arrive whole in time");
                        }
                        return;
                    }
                    tick.set(clock::sleep_until(now + step));
                    continue;
                }
            };
            heard = true;
            conn.more_read
                .store(reader.read_buffer().len() >= HEADER_LEN, Ordering::Relaxed);
            let frame = match next {
                None => return,
                Some(Err(err)) => {
                    if let Some(left_out) = self.warnings.admit() {
                        tracing::warn!(channel = %self.name, conn = conn.id, error = %err, left_out, "closing a follower connection: bad frame");
                    }
                    return;
                }
                Some(Ok(frame)) => frame,
            };
            conn.bytes_in
                .fetch_add(frame.bytes.len() as u64, Ordering::Relaxed);
            // An `invoke` in the hot layout is served with its method name borrowed from the
            // frame; every other frame is parsed first.
            let header = frame.header;
            let served = match read_invoke(frame.conn_text()) {
                Some((method, arg_length, oneway)) if header.kind == Kind::Request => {
                    let args = Args::new(frame.app(), arg_length);
                    self.invoke(conn, header.id, header.timeout, method, args, oneway)
                        .await;
                    Ok(())
                }
                _ => match frame.into_packet() {
                    Ok(packet) => self.on_packet(conn, packet).await,
                    Err(err) => {
                        if let Some(left_out) = self.warnings.admit() {
                            tracing::warn!(channel = %self.name, conn = conn.id, error = %err, left_out, "closing a follower connection: bad frame");
                        }
                        return;
                    }
                },
            };
            if let Err(reason) = served {
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(channel = %self.name, conn = conn.id, reason, left_out, "closing a follower connection");
                }
                return;
            }
        }
    }

    async fn on_packet(self: &Arc<Self>, conn: &Conn, packet: Packet) -> Result<(), &'static str> {
        match (packet.kind, packet.conn) {
            (
                Kind::Request,
                ConnObject::Invoke(Invoke {
                    method,
                    arg_length,
                    oneway,
                }),
            ) => {
                let args = Args::new(packet.app, arg_length);
                self.invoke(conn, packet.id, packet.timeout, &method, args, oneway)
                    .await;
            }
            (Kind::Request, ConnObject::Subscribe(Subscribe { key, method, reg })) => {
                self.subscribe_remote(conn, packet.id, key, method.as_deref(), packet.app, &reg);
            }
            (Kind::Request, ConnObject::UnSubscribe(UnSubscribe { key, method, .. })) => {
                self.unsubscribe_remote(conn, key, method.as_deref());
            }
            (Kind::Request, ConnObject::Heartbeat(Heartbeat {})) => {
                let pong = Packet::response(
                    packet.id,
                    packet.timeout,
                    ConnObject::HeartbeatRes(HeartbeatRes {}),
                    Bytes::new(),
                );
                send(&conn.outbox, &pong, conn.flush());
            }
            (Kind::Response, ConnObject::SubscribeResultRes(SubscribeResultRes {})) => {}
            (Kind::Request, ConnObject::ChannelStats(ChannelStats {})) => {
                // JSON whatever the channel's codec: the snapshot is the runtime's, not the
                // trait's.
                let snapshot = serde_json::to_vec(&self.stats()).unwrap_or_default();
                let answer = Packet::response(
                    packet.id,
                    packet.timeout,
                    ConnObject::ChannelStatsRes(ChannelStatsRes {}),
                    Bytes::from(snapshot),
                );
                send(&conn.outbox, &answer, conn.flush());
            }
            _ => return Err("unexpected packet type"),
        }
        Ok(())
    }
}

/// Queues a packet for a follower without waiting for room; `false` when the connection is gone,
/// the packet cannot be encoded, or the follower has left too much unread: its connection is then
/// closed as too slow, as it is for unread subscription pushes.
pub(super) fn send(outbox: &Outbox, packet: &Packet, flush: Flush) -> bool {
    match outbox.try_send_packet(packet, flush) {
        Ok(()) => true,
        Err(TrySendError::Closed) => false,
        Err(TrySendError::Full) => {
            tracing::warn!("follower is not reading its answers; closing its connection");
            outbox.stop();
            false
        }
        Err(TrySendError::Encode(err)) => {
            tracing::warn!(error = %err, "packet could not be encoded");
            false
        }
    }
}
