//! Serving one follower connection: registration checks, then calls, subscriptions and heartbeats
//! until the follower leaves, falls silent, sends a bad frame, or the leader stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::topics::{Owner, Sink, TopicKey};
use super::{LeaderChannel, run_guarded};
use crate::clock;
use crate::protocol::args::Args;
use crate::protocol::{ConnObject, HEADER_LEN, Kind, Packet, read_invoke};
use crate::service::{MethodKind, Reply, ServiceError};
use crate::signal::Signal;
use crate::transport::{FrameReader, WriteHalf};
use crate::writer::{self, Flush, Outbox, SendError};

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
    /// Holds one place under the port's connection cap while the connection lives.
    pub(crate) _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Registration {
    /// Reads a connection's first packet: the channel asked for and the registration, or `None` if it
    /// is not a `register_channel` request.
    pub(crate) fn from_packet(
        packet: Packet,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<(String, Registration)> {
        let (
            Kind::Request,
            ConnObject::RegisterChannel {
                channel_name,
                fingerprint,
                codec,
                pid,
            },
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
            _permit: permit,
        };
        Some((channel_name, registration))
    }
}

/// State of one follower connection.
struct Conn {
    id: u64,
    outbox: Outbox,
    stop: CancellationToken,
    in_flight: Arc<AtomicUsize>,
    /// More frames were already read after the one being handled.
    more_read: AtomicBool,
}

impl Conn {
    /// Answers to a frame with more read behind it wait for the writer task, which sends the whole
    /// burst's answers in one write; the last answer of a burst goes out at once.
    fn flush(&self) -> Flush {
        if self.more_read.load(Ordering::Relaxed) {
            Flush::Soon
        } else {
            Flush::Now
        }
    }
}

/// Ticks of the silence timer in one idle limit (three heartbeat intervals).
const SILENCE_STEPS: u32 = 4;

impl LeaderChannel {
    /// Takes over a registered follower connection.
    pub(crate) fn serve(
        self: &Arc<Self>,
        reader: FrameReader,
        writer: WriteHalf,
        registration: Registration,
    ) {
        let stop = self.stop.child_token();
        let conn = Conn {
            id: self.next_conn_id(),
            outbox: writer::spawn(writer, stop.clone()),
            stop,
            in_flight: Arc::default(),
            more_read: AtomicBool::new(false),
        };
        let this = Arc::clone(self);
        self.tasks.spawn(async move {
            if this.admit(&conn, &registration).await {
                this.read_loop(&conn, reader).await;
            }
            conn.stop.cancel();
            this.topics.detach(None, Owner::Conn(conn.id));
            drop(registration);
            tracing::debug!(channel = %this.name, conn = conn.id, "follower connection closed");
        });
    }

    /// Answers the registration: accepted (with the epoch) or refused (with a code).
    async fn admit(&self, conn: &Conn, reg: &Registration) -> bool {
        let refusal = match (&reg.fingerprint, &reg.codec) {
            (Some(theirs), _) if *theirs != self.schema.fingerprint_hex() => {
                Some(("schema_mismatch", self.schema.fingerprint_hex()))
            }
            (_, Some(codec)) if codec != crate::transcode::Transcode::name(&self.options.codec) => {
                Some((
                    "codec_mismatch",
                    format!(
                        "the leader uses {}, the follower {codec}",
                        self.options.codec
                    ),
                ))
            }
            _ => None,
        };
        let conn_object = ConnObject::RegisterChannelRes {
            success: Some(refusal.is_none()),
            epoch: Some(self.epoch),
            code: refusal.as_ref().map(|(code, _)| (*code).to_owned()),
            error: refusal.as_ref().map(|(_, message)| message.clone()),
            push_ack: Some(false),
        };
        if let Some((code, message)) = &refusal {
            tracing::warn!(channel = %self.name, pid = reg.pid, code, message, "refusing a follower");
        } else {
            tracing::debug!(channel = %self.name, pid = reg.pid, conn = conn.id, "follower registered");
        }
        let answer = Packet::response(reg.id, reg.timeout, conn_object, Bytes::new());
        let sent = send(&conn.outbox, &answer, Flush::Now).await;
        sent && refusal.is_none()
    }

    async fn read_loop(self: &Arc<Self>, conn: &Conn, mut reader: FrameReader) {
        let idle = self
            .options
            .heartbeat_check
            .then(|| self.options.heartbeat_interval * 3);
        // One timer for the connection, ticking every quarter of the idle limit, rather than one
        // per packet; a packet only sets `heard` (no clock read). The connection closes after
        // between one and one and a quarter idle limits of silence.
        let step = idle.unwrap_or_default() / SILENCE_STEPS;
        let tick = clock::sleep_until(Instant::now() + step);
        let stopped = Signal::on_cancel(&conn.stop);
        tokio::pin!(tick);
        let (mut heard, mut silent_steps) = (false, 0);
        loop {
            let next = tokio::select! {
                biased;
                next = reader.next() => next,
                () = stopped.raised() => return,
                () = &mut tick, if idle.is_some() => {
                    silent_steps = if std::mem::take(&mut heard) { 0 } else { silent_steps + 1 };
                    if silent_steps >= SILENCE_STEPS {
                        tracing::warn!(channel = %self.name, conn = conn.id, idle = ?idle.unwrap_or_default(), "closing a follower connection silent for three heartbeat intervals");
                        return;
                    }
                    tick.set(clock::sleep_until(Instant::now() + step));
                    continue;
                }
            };
            heard = true;
            conn.more_read
                .store(reader.read_buffer().len() >= HEADER_LEN, Ordering::Relaxed);
            let frame = match next {
                None => return,
                Some(Err(err)) => {
                    tracing::warn!(channel = %self.name, conn = conn.id, error = %err, "closing a follower connection: bad frame");
                    return;
                }
                Some(Ok(frame)) => frame,
            };
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
                        tracing::warn!(channel = %self.name, conn = conn.id, error = %err, "closing a follower connection: bad frame");
                        return;
                    }
                },
            };
            if let Err(reason) = served {
                tracing::warn!(channel = %self.name, conn = conn.id, reason, "closing a follower connection");
                return;
            }
        }
    }

    async fn on_packet(self: &Arc<Self>, conn: &Conn, packet: Packet) -> Result<(), &'static str> {
        match (packet.kind, packet.conn) {
            (
                Kind::Request,
                ConnObject::Invoke {
                    method,
                    arg_length,
                    oneway,
                },
            ) => {
                let args = Args::new(packet.app, arg_length);
                self.invoke(conn, packet.id, packet.timeout, &method, args, oneway)
                    .await;
            }
            (Kind::Request, ConnObject::Subscribe { key, method, .. }) => {
                self.subscribe_remote(conn, key, method.as_deref(), packet.app);
            }
            (Kind::Request, ConnObject::UnSubscribe { key, method, .. }) => {
                if let Ok(spec) = self.spec_for(
                    method.as_deref().unwrap_or("subscribe"),
                    &[MethodKind::Subscribe],
                ) {
                    let key = TopicKey {
                        method: spec.name,
                        key: key.into(),
                    };
                    self.topics.detach(Some(&key), Owner::Conn(conn.id));
                }
            }
            (Kind::Request, ConnObject::Heartbeat {}) => {
                let pong = Packet::response(
                    packet.id,
                    packet.timeout,
                    ConnObject::HeartbeatRes {},
                    Bytes::new(),
                );
                send(&conn.outbox, &pong, conn.flush()).await;
            }
            (Kind::Response, ConnObject::SubscribeResultRes {}) => {}
            _ => return Err("unexpected packet type"),
        }
        Ok(())
    }

    /// Starts a call of a follower; its answer is sent only if it finishes within the deadline.
    async fn invoke(
        self: &Arc<Self>,
        conn: &Conn,
        id: i64,
        timeout: i32,
        method: &str,
        args: Args,
        oneway: bool,
    ) {
        let kinds = [MethodKind::Invoke, MethodKind::Oneway, MethodKind::Publish];
        let limit = self.options.max_calls_per_follower;
        let spec = match self.spec_for(method, &kinds) {
            Err(err) => {
                return self
                    .answer(&conn.outbox, id, timeout, oneway, Err(err), conn.flush())
                    .await;
            }
            Ok(_) if conn.in_flight.load(Ordering::Relaxed) >= limit => {
                let err = ServiceError::Overloaded { limit };
                return self
                    .answer(&conn.outbox, id, timeout, oneway, Err(err), conn.flush())
                    .await;
            }
            Ok(spec) => spec,
        };
        let mut call = Box::pin(run_guarded(
            Arc::clone(&self.service),
            spec.name,
            args,
            self.options.codec,
        ));
        // Most calls of an in-memory or cached real client finish at once: run them here, with no
        // task, timer or hop; only a call that has to wait gets its own task.
        let once = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = once {
            return self
                .answer(&conn.outbox, id, timeout, oneway, result, conn.flush())
                .await;
        }
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = Arc::clone(&conn.in_flight);
        let outbox = conn.outbox.clone();
        let this = Arc::clone(self);
        let deadline = u64::try_from(timeout)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        self.tasks.spawn(async move {
            let started = Instant::now();
            let within_deadline = async {
                match deadline {
                    Some(deadline) => tokio::time::timeout(deadline, call).await.ok(),
                    None => Some(call.await),
                }
            };
            // A leader that stops cancels its calls; a follower that leaves does not (its oneway calls
            // still run).
            let result = tokio::select! {
                () = this.stop.cancelled() => None,
                result = within_deadline => result,
            };
            in_flight.fetch_sub(1, Ordering::Relaxed);
            match result {
                Some(result) => {
                    this.answer(&outbox, id, timeout, oneway, result, Flush::Now)
                        .await;
                }
                None => tracing::debug!(
                    method = spec.name,
                    elapsed = ?started.elapsed(),
                    "call not answered: past its deadline, or the leader stopped"
                ),
            }
        });
    }

    /// Sends an `invoke_result` (nothing for a oneway call; its failure is logged).
    async fn answer(
        &self,
        outbox: &Outbox,
        id: i64,
        timeout: i32,
        oneway: bool,
        result: Result<Reply, ServiceError>,
        flush: Flush,
    ) {
        let (success, fault, app) = match result {
            Ok(Reply::Value(bytes)) => (true, None, bytes),
            Ok(Reply::Error(bytes)) => (false, None, bytes),
            Err(err) => {
                tracing::warn!(channel = %self.name, error = %err, "call failed in the leader");
                (
                    false,
                    Some(err.fault().to_owned()),
                    Bytes::from(err.to_string()),
                )
            }
        };
        if oneway {
            return;
        }
        let conn_object = ConnObject::InvokeResult { success, fault };
        send(
            outbox,
            &Packet::response(id, timeout, conn_object, app),
            flush,
        )
        .await;
    }

    fn subscribe_remote(
        self: &Arc<Self>,
        conn: &Conn,
        key: String,
        method: Option<&str>,
        app: Bytes,
    ) {
        let method = method.unwrap_or("subscribe");
        let limit = self.options.max_subscriptions_per_follower;
        let result = self
            .spec_for(method, &[MethodKind::Subscribe])
            .and_then(|spec| {
                let topic = TopicKey {
                    method: spec.name,
                    key: Arc::from(key.as_str()),
                };
                // The cap counts this follower's subscriptions, whoever else holds the topic.
                let owner = Owner::Conn(conn.id);
                if !self.topics.is_held_by(&topic, owner)
                    && self.topics.count_for_conn(conn.id) >= limit
                {
                    return Err(ServiceError::TooManySubscriptions { limit });
                }
                let sink = Sink::Remote {
                    outbox: conn.outbox.clone(),
                    stop: conn.stop.clone(),
                };
                self.attach(topic, spec, Owner::Conn(conn.id), sink, &app)
            });
        if let Err(err) = result {
            tracing::warn!(channel = %self.name, method, error = %err, "subscription refused");
            let end = ConnObject::SubscribeResult {
                key,
                method: Some(method.to_owned()),
                end: Some(err.to_string()),
            };
            let _ = writer::encode(&Packet::request(0, 0, end, Bytes::from(err.to_string())))
                .map(|frame| conn.outbox.try_send(&frame));
        }
    }
}

/// Encodes and queues a packet; `false` when the connection is gone or the packet cannot be encoded.
async fn send(outbox: &Outbox, packet: &Packet, flush: Flush) -> bool {
    match outbox.send_packet(packet, flush).await {
        Ok(()) => true,
        Err(SendError::Closed) => false,
        Err(SendError::Encode(err)) => {
            tracing::warn!(error = %err, "packet could not be encoded");
            false
        }
    }
}
