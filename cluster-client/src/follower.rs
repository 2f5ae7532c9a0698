//! One follower connection to a leader: registration, pending calls with deadlines, heartbeats, and
//! the subscriptions of this process on that leader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::error::Error;
use crate::ids::IdGen;
use crate::mailbox::Mailbox;
use crate::options::Options;
use crate::protocol::{ConnObject, Frame, Kind, Packet, ProtocolError, RawJson, push_text};
use crate::service::{MethodSpec, Reply, Schema};
use crate::signal::Signal;
use crate::transcode::Transcode;
use crate::transport::{self, FrameReader, ReadHalf, WriteHalf};
use crate::writer::{self, Flush, Outbox, SendError};

use pending::{Due, Pending};

mod pending;
#[cfg(test)]
mod tests;

/// Why joining a leader failed; the election decides what to do about each.
#[derive(Debug)]
pub(crate) enum JoinError {
    /// Nothing listens on the port.
    Unreachable(std::io::Error),
    /// The peer accepted, then closed without answering.
    Closed,
    /// The peer accepted and said nothing within the connect timeout.
    Silent(Duration),
    /// The peer answered with something that is not a `register_channel_res`.
    Garbage(String),
    /// The leader answered and refused.
    Refused(Error),
}

struct PendingCall {
    method: &'static str,
    tx: oneshot::Sender<Result<Packet, Error>>,
    /// When the call fails with [`Error::Timeout`], unless answered first.
    deadline: Instant,
    /// Its deadline as configured, for the error.
    timeout: Duration,
}

impl Due for PendingCall {
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// The subscriptions of this process to one (method, key) on this connection.
struct Topic {
    method: &'static str,
    sinks: Vec<(u64, Arc<Mailbox>)>,
    latest: Option<Bytes>,
}

impl Topic {
    /// Keeps `item` for late subscribers and hands it to every subscriber.
    fn deliver(&mut self, item: Bytes) {
        for (_, mailbox) in &self.sinks {
            mailbox.deliver(item.clone());
        }
        self.latest = Some(item);
    }
}

/// Topics by the connection object of their item pushes ([`push_text`]), so that a push is matched
/// by its text, without parsing it.
type Topics = HashMap<Box<[u8]>, Topic>;

/// A live connection to the leader of one channel.
pub(crate) struct FollowerConn {
    options: Options,
    epoch: u64,
    push_ack: bool,
    outbox: Outbox,
    ids: IdGen,
    pending: Pending<PendingCall>,
    topics: Mutex<Topics>,
    /// Fires when the connection is gone, for whatever reason.
    lost: CancellationToken,
    /// Set with `lost`, readable without its lock (calls check it on every send).
    gone: AtomicBool,
    /// The sweeper's next wake-up, in nanoseconds after `born` (`u64::MAX`: none). One timer for
    /// the whole connection instead of one per call: a call lowers it, the sweeper resets it.
    sweep_at: AtomicU64,
    /// Wakes the sweeper when a call's deadline comes before `sweep_at`.
    sweep: Notify,
    born: Instant,
}

impl FollowerConn {
    /// Connects to the port and registers on `channel`.
    pub(crate) async fn join(
        options: &Options,
        schema: &'static Schema,
        channel: &str,
    ) -> Result<Arc<Self>, JoinError> {
        let wait = options.connect_timeout;
        match tokio::time::timeout(wait, transport::connect(options.port)).await {
            Ok(Ok((read, write))) => Self::register(read, write, options, schema, channel).await,
            Ok(Err(err)) => Err(JoinError::Unreachable(err)),
            Err(_) => Err(JoinError::Silent(wait)),
        }
    }

    /// Registers on `channel` over an open connection.
    pub(crate) async fn register(
        read: ReadHalf,
        write: WriteHalf,
        options: &Options,
        schema: &'static Schema,
        channel: &str,
    ) -> Result<Arc<Self>, JoinError> {
        let wait = options.connect_timeout;
        let lost = CancellationToken::new();
        let outbox = writer::spawn(write, lost.clone());
        let mut reader = transport::frame_reader(read, options.max_frame_size);
        let ids = IdGen::default();
        let register = ConnObject::RegisterChannel {
            channel_name: channel.to_owned(),
            fingerprint: Some(schema.fingerprint_hex()),
            codec: Some(options.codec.name().to_owned()),
            pid: Some(std::process::id()),
        };
        let id = ids.next();
        match outbox
            .send_packet(
                &Packet::request(id, millis(wait), register, Bytes::new()),
                Flush::Now,
            )
            .await
        {
            Ok(()) => {}
            Err(SendError::Closed) => return Err(JoinError::Closed),
            Err(SendError::Encode(err)) => return Err(JoinError::Refused(err.into())),
        }
        let answer = match tokio::time::timeout(wait, reader.next()).await {
            Err(_) => return Err(JoinError::Silent(wait)),
            Ok(None) => return Err(JoinError::Closed),
            // A peer that closes with our registration unread resets the connection: still a close.
            Ok(Some(Err(crate::protocol::ProtocolError::Io(err)))) if is_reset(&err) => {
                return Err(JoinError::Closed);
            }
            Ok(Some(Err(err))) => return Err(JoinError::Garbage(err.to_string())),
            Ok(Some(Ok(frame))) => frame
                .into_packet()
                .map_err(|err| JoinError::Garbage(err.to_string()))?,
        };
        let (epoch, push_ack) = accept_answer(answer, id, channel, schema)?;
        let conn = Arc::new(FollowerConn {
            options: options.clone(),
            epoch,
            push_ack,
            outbox,
            ids,
            pending: Pending::default(),
            topics: Mutex::default(),
            lost,
            gone: AtomicBool::new(false),
            sweep_at: AtomicU64::new(u64::MAX),
            sweep: Notify::new(),
            born: Instant::now(),
        });
        tokio::spawn(Arc::clone(&conn).read_loop(reader));
        tokio::spawn(Arc::clone(&conn).sweep_loop());
        if options.heartbeat_check {
            tokio::spawn(Arc::clone(&conn).heartbeat_loop());
        }
        Ok(conn)
    }

    /// The leader's term.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
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

    /// Closes the connection; calls in flight fail with [`Error::LeaderLost`].
    pub(crate) fn close(&self) {
        self.mark_lost();
    }

    /// Sends a call; a two-way call waits for its answer for `timeout`.
    #[cfg(test)]
    pub(crate) async fn call(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        oneway: bool,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let deadline = Instant::now() + timeout;
        self.call_until(spec, argc, app, oneway, deadline, timeout)
            .await
    }

    /// Sends a call; a two-way call waits for its answer until `deadline` (`timeout` after the call
    /// began: it goes in the header and in the error).
    pub(crate) async fn call_until(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        oneway: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let conn = ConnObject::Invoke {
            method: spec.name.to_owned(),
            arg_length: argc,
            oneway,
        };
        let Some(answer) = self
            .request(spec.name, conn, app, !oneway, deadline, timeout)
            .await?
        else {
            return Ok(Reply::Value(Bytes::new()));
        };
        match answer.conn {
            ConnObject::InvokeResult { success: true, .. } => Ok(Reply::Value(answer.app)),
            ConnObject::InvokeResult {
                success: false,
                fault: None,
            } => Ok(Reply::Error(answer.app)),
            ConnObject::InvokeResult {
                fault: Some(name), ..
            } => Err(Error::Remote {
                name,
                message: String::from_utf8_lossy(&answer.app).into_owned(),
            }),
            other => Err(Error::Remote {
                name: "unexpected_answer".to_owned(),
                message: format!("`{}` answered with {}", spec.name, other.type_name()),
            }),
        }
    }

    /// Sends a request; with `wait`, awaits its response until `deadline`.
    async fn request(
        &self,
        method: &'static str,
        conn: ConnObject,
        app: Bytes,
        wait: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<Packet>, Error> {
        let lost = || Error::LeaderLost {
            method: method.to_owned(),
        };
        if self.is_lost() {
            return Err(lost());
        }
        let (id, rx, in_flight) = if wait {
            let (tx, rx) = oneshot::channel();
            let call = PendingCall {
                method,
                tx,
                deadline,
                timeout,
            };
            let (id, in_flight) = self.track(call);
            // Lost between the check above and `track`: the read loop's drain may have missed
            // this call, and nothing else would end it.
            if self.is_lost() {
                self.pending.remove(id);
                return Err(lost());
            }
            (id, Some(rx), in_flight)
        } else {
            (self.ids.next(), None, self.pending.len() + 1)
        };
        // A lone call is written at once; with others in flight, the writer task sends the burst in
        // one write.
        let flush = if in_flight > 1 {
            Flush::Soon
        } else {
            Flush::Now
        };
        let sent = self
            .outbox
            .send_packet(&Packet::request(id, millis(timeout), conn, app), flush)
            .await;
        if let Err(err) = sent {
            self.pending.remove(id);
            return Err(match err {
                SendError::Closed => lost(),
                SendError::Encode(err) => err.into(),
            });
        }
        let Some(rx) = rx else { return Ok(None) };
        // The answer, or the sweeper's `Timeout` at the deadline, or `LeaderLost`.
        match rx.await {
            Ok(answer) => answer.map(Some),
            Err(_) => Err(lost()),
        }
    }

    /// Fails calls whose deadline passed: one timer for the connection, set to the earliest deadline.
    async fn sweep_loop(self: Arc<Self>) {
        let lost = self.lost.clone();
        let lost = lost.cancelled();
        tokio::pin!(lost);
        loop {
            let wake = self.sweep.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let at = self.sweep_at.load(Ordering::Acquire);
            let until = self.born + Duration::from_nanos(at);
            tokio::select! {
                biased;
                () = &mut lost => return,
                () = &mut wake => continue,
                () = clock::sleep_until(until.into_std()), if at != u64::MAX => {}
            }
            // Reset before the scan: a call tracked from here on lowers it itself, one tracked
            // before is seen by the scan.
            self.sweep_at.store(u64::MAX, Ordering::Release);
            let (expired, next) = self.pending.expire(Instant::now());
            if let Some(next) = next {
                self.sweep_at.fetch_min(self.nanos(next), Ordering::AcqRel);
            }
            for call in expired {
                let _ = call.tx.send(Err(Error::Timeout {
                    method: call.method.to_owned(),
                    ms: call.timeout.as_millis() as u64,
                }));
            }
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Takes an id no pending call holds, and says how many calls are then in flight.
    fn track(&self, call: PendingCall) -> (i64, usize) {
        let at = self.nanos(call.deadline);
        let (id, in_flight) = self.pending.insert(&self.ids, call);
        // Most calls are due after the earliest pending one: a load, and no write to a line that
        // every caller shares.
        if at < self.sweep_at.load(Ordering::Acquire)
            && self.sweep_at.fetch_min(at, Ordering::AcqRel) > at
        {
            self.sweep.notify_one();
        }
        (id, in_flight)
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscription of this process; the leader is asked once per (method, key), and a late
    /// subscriber gets the latest item this connection saw.
    pub(crate) fn subscribe(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: &Bytes,
        sub_id: u64,
        mailbox: &Arc<Mailbox>,
    ) {
        let mut topics = self.topics();
        let topic = topics
            .entry(push_text(key, spec.name))
            .or_insert_with(|| Topic {
                method: spec.name,
                sinks: Vec::new(),
                latest: None,
            });
        if topic.sinks.iter().any(|(id, _)| *id == sub_id) {
            return;
        }
        let first = topic.sinks.is_empty();
        topic.sinks.push((sub_id, Arc::clone(mailbox)));
        if let Some(latest) = &topic.latest {
            mailbox.deliver(latest.clone());
        }
        drop(topics);
        if first {
            self.send_subscription(spec, key, app.clone(), true);
        }
    }

    /// Drops a subscription of this process; the leader is told when it was the last for its key.
    pub(crate) fn unsubscribe(&self, spec: &'static MethodSpec, key: &Arc<str>, sub_id: u64) {
        let mut topics = self.topics();
        let topic_key = push_text(key, spec.name);
        let Some(topic) = topics.get_mut(&topic_key) else {
            return;
        };
        topic.sinks.retain(|(id, _)| *id != sub_id);
        if topic.sinks.is_empty() {
            topics.remove(&topic_key);
            drop(topics);
            self.send_subscription(spec, key, Bytes::new(), false);
        }
    }

    fn send_subscription(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: Bytes,
        subscribe: bool,
    ) {
        let reg = key.strip_prefix(crate::handle::KEY_PREFIX).unwrap_or(key);
        let reg = match RawJson::new(reg.to_owned()) {
            Ok(reg) => reg,
            Err(err) => {
                tracing::warn!(method = spec.name, error = %err, "subscription key is not JSON");
                return;
            }
        };
        let (key, method) = (key.to_string(), Some(spec.name.to_owned()));
        let conn = if subscribe {
            ConnObject::Subscribe { key, reg, method }
        } else {
            ConnObject::UnSubscribe { key, reg, method }
        };
        let timeout = millis(self.options.response_timeout);
        match writer::encode(&Packet::request(self.ids.next(), timeout, conn, app)) {
            Ok(frame) => {
                if self.outbox.try_send(&frame).is_err() {
                    tracing::warn!(
                        method = spec.name,
                        "leader connection is backed up; closing it to resubscribe"
                    );
                    self.mark_lost();
                }
            }
            Err(err) => {
                tracing::warn!(method = spec.name, error = %err, "subscription request could not be encoded")
            }
        }
    }

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
            if let Err(err) = read {
                tracing::warn!(error = %err, "bad frame from the leader; dropping the connection");
                break;
            }
        }
        self.mark_lost();
        for call in self.pending.drain() {
            let _ = call.tx.send(Err(Error::LeaderLost {
                method: call.method.to_owned(),
            }));
        }
    }

    /// An item push for a topic of this connection is known by its text and delivered without
    /// parsing; every other frame is parsed.
    fn on_frame(&self, frame: Frame) -> Result<(), ProtocolError> {
        if frame.header.kind == Kind::Request {
            let mut topics = self.topics();
            if let Some(topic) = topics.get_mut(frame.conn_text()) {
                topic.deliver(frame.app());
                drop(topics);
                self.ack_push(frame.header.id);
                return Ok(());
            }
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
                ConnObject::SubscribeResult { key, method, end } => {
                    self.on_push(&key, method.as_deref(), end.as_deref(), packet.app);
                    self.ack_push(packet.id);
                }
                other => tracing::debug!(
                    kind = other.type_name(),
                    "ignoring an unexpected request from the leader"
                ),
            },
        }
    }

    /// Acknowledges a push, to a leader that asked for acknowledgements at registration.
    fn ack_push(&self, id: i64) {
        if self.push_ack {
            let ack = Packet::response(id, 0, ConnObject::SubscribeResultRes {}, Bytes::new());
            if let Ok(frame) = writer::encode(&ack) {
                let _ = self.outbox.try_send(&frame);
            }
        }
    }

    /// A push whose text was not a topic's: an item written another way, or the end of a topic.
    fn on_push(&self, key: &str, method: Option<&str>, end: Option<&str>, item: Bytes) {
        let topic_key = push_text(key, method.unwrap_or("subscribe"));
        let mut topics = self.topics();
        let Some(topic) = topics.get_mut(&topic_key) else {
            return;
        };
        match end {
            None => topic.deliver(item),
            Some(reason) => {
                for (_, mailbox) in &topic.sinks {
                    mailbox.close(Some(Error::SubscriptionEnded {
                        method: topic.method.to_owned(),
                        reason: reason.to_owned(),
                    }));
                }
                topics.remove(&topic_key);
            }
        }
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.lost.cancelled() => return,
                () = clock::sleep(self.options.heartbeat_interval) => {}
            }
            let wait = self.options.response_timeout;
            let ping = self.request(
                "heartbeat",
                ConnObject::Heartbeat {},
                Bytes::new(),
                true,
                Instant::now() + wait,
                wait,
            );
            if let Err(err) = ping.await {
                if !self.is_lost() {
                    tracing::warn!(error = %err, "heartbeat unanswered; treating the leader as dead");
                    self.mark_lost();
                }
                return;
            }
        }
    }
}

/// Checks the answer to `register_channel`: the epoch and whether pushes want acknowledgements.
fn accept_answer(
    answer: Packet,
    id: i64,
    channel: &str,
    schema: &Schema,
) -> Result<(u64, bool), JoinError> {
    let ConnObject::RegisterChannelRes {
        success,
        epoch,
        code,
        error,
        push_ack,
    } = answer.conn
    else {
        return Err(JoinError::Garbage(format!(
            "answered register_channel with {}",
            answer.conn.type_name()
        )));
    };
    if answer.kind != Kind::Response || answer.id != id {
        return Err(JoinError::Garbage(format!(
            "answered with id {} (expected {id})",
            answer.id
        )));
    }
    if success != Some(false) {
        return Ok((epoch.unwrap_or(0), push_ack.unwrap_or(true)));
    }
    let code = code.unwrap_or_else(|| "refused".to_owned());
    let message = error.unwrap_or_default();
    Err(JoinError::Refused(match code.as_str() {
        "schema_mismatch" => Error::SchemaMismatch {
            channel: channel.to_owned(),
            ours: schema.fingerprint_hex(),
            theirs: message,
        },
        _ => Error::Refused {
            channel: channel.to_owned(),
            code,
            message,
        },
    }))
}

/// Whether a read failed because the peer closed (or reset) the connection.
fn is_reset(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// A duration as the header's signed 32-bit milliseconds.
pub(crate) fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
