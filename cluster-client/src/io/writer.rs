//! The write side of a connection: frames are encoded straight into one pending buffer, and the sender
//! that finds the socket idle writes them itself, without a task hop. Only when the socket would block
//! does a writer task take over and send what is pending (everything queued meanwhile goes out in the
//! same write), so writes coalesce under load and cost no hop when idle.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::task::noop_waker_ref;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::signal::Signal;
use crate::protocol::budget::Budget;
use crate::protocol::{Packet, ProtocolError};

/// Bytes a connection may have queued and not yet taken by the socket (the chunk being written
/// included) before senders wait (or [`Outbox::try_send`] reports [`SendFailure::Full`]). A single
/// larger frame is still accepted into an empty buffer.
const PENDING_LIMIT: usize = 4 * 1024 * 1024;

/// How long a stopped writer may spend sending what was queued before the stop.
const FLUSH_ON_STOP: Duration = Duration::from_millis(500);

/// When a queued frame is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// By the sender, at once, if nobody is writing.
    Now,
    /// By the writer task, after the tasks queued on this thread add their frames (a burst of calls
    /// or answers goes out in one write).
    Soon,
    /// By the writer task, at once (one task handing the same frame to many connections).
    Handoff,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// Too much is pending (only from [`Outbox::try_send`]).
    Full,
    /// The connection is gone.
    Closed,
}

/// The sending side of a connection. Cheap to clone; when the last clone is dropped the connection
/// is stopped (after what is pending was sent).
#[derive(Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
    _last: Arc<StopOnDrop>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

type WriteHalf = Pin<Box<dyn AsyncWrite + Send>>;

struct Shared {
    state: Mutex<State>,
    /// The socket; only whoever holds `State::writing` touches it, so the lock is never contended.
    io: Mutex<WriteHalf>,
    /// Hands the writing over to the writer task.
    handover: Signal,
    /// Raised when `stop` is cancelled, for the writer task (polled on every write).
    stopped: Arc<Signal>,
    /// Wakes senders waiting for room.
    room: Notify,
    stop: CancellationToken,
    /// The member's budget of buffered bytes, which what is queued here counts against until it
    /// is written (a leader's connections); `None` for a follower's own connection.
    budget: Option<Budget>,
    /// Bytes taken from `budget` and not yet written (given back on drop).
    charged: AtomicUsize,
    /// Bytes the socket has taken since the connection began; changed only under `io`.
    sent: AtomicU64,
    /// Set under `io` by [`Outbox::seal`]: nothing more is written.
    sealed: AtomicBool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(*self.charged.get_mut());
        }
    }
}

#[derive(Default)]
struct State {
    /// Encoded frames not yet taken by a writer.
    pending: BytesMut,
    /// The front of what a writer took but the socket did not accept; goes before `pending`.
    unsent: Option<BytesMut>,
    /// Someone (a sender, or the writer task) is writing.
    writing: bool,
    /// A sender waits for room (so writes that drain the buffer wake `room`).
    blocked: bool,
    /// The writer task should let queued tasks add their frames before writing ([`Flush::Soon`]).
    settle: bool,
    /// Stopped by a sender ([`Outbox::stop`]): what is pending still goes, nothing more is taken.
    stopping: bool,
    closed: bool,
    /// Bytes queued since the connection began: the offset of the next frame in its byte stream.
    queued_total: u64,
}

impl Outbox {
    /// Queues an encoded frame if there is room now.
    ///
    /// The write itself is left to the writer task, so one task can hand a frame to many connections
    /// (a subscription fan-out) without making their system calls one after another.
    pub(crate) fn try_send(&self, frame: &Bytes) -> Result<(), SendFailure> {
        let mut state = self.shared.lock();
        if state.closed || state.stopping {
            return Err(SendFailure::Closed);
        }
        let backlog = self.shared.backlog(&state);
        if backlog > 0 && backlog + frame.len() > PENDING_LIMIT {
            return Err(SendFailure::Full);
        }
        if !self.shared.charge(frame.len()) {
            return Err(SendFailure::Full);
        }
        state.pending.extend_from_slice(frame);
        state.queued_total += frame.len() as u64;
        self.shared.kick(state, Flush::Handoff);
        Ok(())
    }

    /// Writes nothing more, not even what is pending, and says how many bytes of the connection's
    /// byte stream the socket took: a frame at an offset (from [`send_packet`](Self::send_packet))
    /// at or past it never left this process, so it can go elsewhere. Called when the peer is lost.
    pub(crate) fn seal(&self) -> u64 {
        let io = self
            .shared
            .io
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shared.sealed.store(true, Ordering::Relaxed);
        let sent = self.shared.sent.load(Ordering::Relaxed);
        drop(io);
        sent
    }

    /// What [`seal`](Self::seal) returned, once sealed.
    pub(crate) fn sealed_at(&self) -> Option<u64> {
        let _io = self
            .shared
            .io
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shared
            .sealed
            .load(Ordering::Relaxed)
            .then(|| self.shared.sent.load(Ordering::Relaxed))
    }

    /// Bytes the socket has taken so far.
    pub(crate) fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Stops the connection (a peer that does not read what it is sent): from now on nothing more is
    /// queued, and what is pending is still sent within the stop's bound.
    pub(crate) fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.stop.cancel();
    }

    /// Encodes `packet` straight into the pending buffer (no frame of its own), waiting for room;
    /// returns the frame's offset in the connection's byte stream (see [`seal`](Self::seal)).
    ///
    /// [`Flush::Now`] writes it at once if nobody is writing (the lowest latency); [`Flush::Soon`]
    /// leaves it to the writer task, so that the frames of a burst go out in one write.
    pub(crate) async fn send_packet(
        &self,
        packet: &Packet,
        flush: Flush,
    ) -> Result<u64, SendError> {
        let hint = 64 + packet.app.len();
        self.send_with(hint, flush, |buf| packet.encode(buf)).await
    }

    /// Encodes `packet` straight into the pending buffer if there is room now; never waits.
    ///
    /// What a connection's reader sends (answers, heartbeat answers) goes this way: a peer that does
    /// not read what it asked for gets [`TrySendError::Full`], and its connection is closed, instead of
    /// the reader (and every task holding an answer) waiting for room.
    pub(crate) fn try_send_packet(
        &self,
        packet: &Packet,
        flush: Flush,
    ) -> Result<(), TrySendError> {
        let hint = 64 + packet.app.len();
        let mut encode = Some(|buf: &mut BytesMut| packet.encode(buf));
        match self.shared.push(hint, flush, &mut encode) {
            None => Err(TrySendError::Full),
            Some(Ok(_)) => Ok(()),
            Some(Err(SendError::Closed)) => Err(TrySendError::Closed),
            Some(Err(SendError::Encode(err))) => Err(TrySendError::Encode(err)),
        }
    }

    async fn send_with(
        &self,
        hint: usize,
        flush: Flush,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    ) -> Result<u64, SendError> {
        let mut encode = Some(encode);
        loop {
            if let Some(pushed) = self.shared.push(hint, flush, &mut encode) {
                return pushed;
            }
            // No room: register for a wake-up, then look again before waiting.
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(pushed) = self.shared.push(hint, flush, &mut encode) {
                return pushed;
            }
            tokio::select! {
                () = room => {}
                () = self.shared.stop.cancelled() => return Err(SendError::Closed),
            }
        }
    }
}

/// Why [`Outbox::send_packet`] failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection is gone.
    Closed,
    /// The packet could not be encoded (nothing was queued).
    Encode(ProtocolError),
}

/// Why [`Outbox::try_send_packet`] failed.
#[derive(Debug)]
pub(crate) enum TrySendError {
    /// Too much is pending.
    Full,
    /// The connection is gone.
    Closed,
    /// The packet could not be encoded (nothing was queued).
    Encode(ProtocolError),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes into the pending buffer if there is room (`None` when there is not; `encode` is then
    /// left in place for the next try).
    fn push<F>(
        &self,
        hint: usize,
        flush: Flush,
        encode: &mut Option<F>,
    ) -> Option<Result<u64, SendError>>
    where
        F: FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    {
        let mut state = self.lock();
        // A stopped connection sends what was queued before the stop, and nothing after it. A stop
        // through the outbox is seen at once; any other, once the writer's signal is raised.
        if state.closed || state.stopping || self.stopped.is_raised() {
            return Some(Err(SendError::Closed));
        }
        if encode.is_none() {
            return None;
        }
        let backlog = self.backlog(&state);
        if backlog > 0 && backlog + hint > PENDING_LIMIT || !self.charge(hint) {
            state.blocked = true;
            return None;
        }
        let encode = encode.take()?;
        let start = state.pending.len();
        if let Err(err) = encode(&mut state.pending) {
            state.pending.truncate(start);
            self.written(hint);
            return Some(Err(SendError::Encode(err)));
        }
        // The hint was taken from the budget; settle it to the frame's real size.
        let size = state.pending.len() - start;
        match size.checked_sub(hint) {
            Some(more) => self.charge_over(more),
            None => self.written(hint - size),
        }
        let offset = state.queued_total;
        state.queued_total += size as u64;
        self.kick(state, flush);
        Some(Ok(offset))
    }

    /// Bytes queued and not yet taken by the socket: pending, left unsent, and the chunk a writer
    /// is writing now.
    fn backlog(&self, state: &State) -> usize {
        let sent = self.sent.load(Ordering::Relaxed);
        usize::try_from(state.queued_total.saturating_sub(sent)).unwrap_or(usize::MAX)
    }

    /// Takes `bytes` from the budget, if there is one; `false` if they do not fit.
    fn charge(&self, bytes: usize) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        if !budget.try_take(bytes) {
            return false;
        }
        self.charged.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// Takes `bytes` from the budget even past its limit: the few bytes by which an encoded frame
    /// outgrew the size it was charged for.
    fn charge_over(&self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.take_over(bytes);
            self.charged.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Gives `bytes` back to the budget: written, or never queued.
    fn written(&self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.give(bytes);
            self.charged.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// After a push: if nobody is writing, write now in this thread, or wake the writer task.
    fn kick(&self, mut state: MutexGuard<'_, State>, flush: Flush) {
        if state.writing || state.closed {
            return;
        }
        state.writing = true;
        match flush {
            Flush::Now => {
                let chunk = state.pending.split();
                drop(state);
                self.write_now(chunk);
            }
            Flush::Soon | Flush::Handoff => {
                state.settle = flush == Flush::Soon;
                drop(state);
                self.handover.raise();
            }
        }
    }

    /// Writes what the socket takes without waiting; hands the rest to the writer task.
    fn write_now(&self, mut chunk: BytesMut) {
        let mut cx = Context::from_waker(noop_waker_ref());
        loop {
            {
                let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
                while !chunk.is_empty() {
                    if self.sealed.load(Ordering::Relaxed) {
                        drop(io);
                        return self.fail();
                    }
                    match io.as_mut().poll_write(&mut cx, &chunk) {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            chunk.advance(n);
                            self.sent.fetch_add(n as u64, Ordering::Relaxed);
                            self.written(n);
                        }
                        Poll::Ready(Ok(_)) | Poll::Ready(Err(_)) => {
                            drop(io);
                            return self.fail();
                        }
                        Poll::Pending => break,
                    }
                }
            }
            let mut state = self.lock();
            if !chunk.is_empty() {
                state.unsent = Some(chunk);
                drop(state);
                self.handover.raise();
                return;
            }
            if std::mem::take(&mut state.blocked) {
                self.room.notify_waiters();
            }
            if state.pending.is_empty() || state.closed {
                state.writing = false;
                return;
            }
            chunk = state.pending.split();
        }
    }

    /// The next chunk for the writer task, or `None` (and the writing given up) when nothing is left.
    fn next_chunk(&self) -> Option<BytesMut> {
        let mut state = self.lock();
        if let Some(unsent) = state.unsent.take() {
            return Some(unsent);
        }
        if state.pending.is_empty() {
            state.writing = false;
            return None;
        }
        Some(state.pending.split())
    }

    /// Writes `chunk` whole, waiting for the socket.
    async fn write_all(&self, mut chunk: BytesMut) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write_chunk(cx, &mut chunk)).await
    }

    /// Writes `chunk` whole, waiting for the socket unless the connection stops meanwhile
    /// (`None`: stopped with the chunk not all written).
    async fn write_all_until_stopped(&self, mut chunk: BytesMut) -> Option<std::io::Result<()>> {
        std::future::poll_fn(|cx| match self.poll_write_chunk(cx, &mut chunk) {
            Poll::Ready(written) => Poll::Ready(Some(written)),
            Poll::Pending if self.stopped.poll_raised(cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    fn poll_write_chunk(
        &self,
        cx: &mut Context<'_>,
        chunk: &mut BytesMut,
    ) -> Poll<std::io::Result<()>> {
        let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
        while !chunk.is_empty() {
            if self.sealed.load(Ordering::Relaxed) {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
            match io.as_mut().poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    chunk.advance(n);
                    self.sent.fetch_add(n as u64, Ordering::Relaxed);
                    self.written(n);
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Waits until there is something to write (`true`) or the connection stops (`false`).
    async fn handed_over(&self) -> bool {
        std::future::poll_fn(|cx| {
            if self.stopped.poll_raised(cx) {
                Poll::Ready(false)
            } else if self.handover.poll_take(cx) {
                Poll::Ready(true)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn fail(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.pending = BytesMut::new();
        state.unsent = None;
        drop(state);
        self.room.notify_waiters();
        self.stop.cancel();
    }
}

/// Encodes one packet into its own frame (for frames shared by several connections, and for tests).
pub(crate) fn encode(packet: &Packet) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::new();
    packet.encode(&mut buf)?;
    Ok(buf.freeze())
}

/// Starts the writer task of `io`. The connection ends when a write fails, when `stop` fires, or when
/// the last [`Outbox`] is dropped; what is pending then is still sent, within a bound, and `stop` is
/// cancelled so the reader side ends too.
pub(crate) fn spawn<W>(io: W, stop: CancellationToken) -> Outbox
where
    W: AsyncWrite + Send + 'static,
{
    spawn_within(io, stop, None)
}

/// [`spawn`], with what is queued counted against `budget` until it is written: a frame that does
/// not fit is refused as if the connection's own buffer were full.
pub(crate) fn spawn_within<W>(io: W, stop: CancellationToken, budget: Option<Budget>) -> Outbox
where
    W: AsyncWrite + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::default(),
        io: Mutex::new(Box::pin(io)),
        handover: Signal::default(),
        stopped: Signal::on_cancel(&stop),
        room: Notify::new(),
        stop: stop.clone(),
        budget,
        charged: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        sealed: AtomicBool::new(false),
    });
    tokio::spawn(write_loop(Arc::clone(&shared)));
    Outbox {
        shared,
        _last: Arc::new(StopOnDrop(stop)),
    }
}

async fn write_loop(shared: Arc<Shared>) {
    while shared.handed_over().await {
        // Let the tasks already queued on this thread (callers woken by one read of answers) add
        // their frames first, so the burst goes out in one write.
        if std::mem::take(&mut shared.lock().settle) {
            tokio::task::yield_now().await;
        }
        while let Some(chunk) = shared.next_chunk() {
            // Stopped while busy: what is left goes with the connection; stopped in the middle of
            // a frame: the rest would be garbage to the peer.
            if shared.stopped.is_raised() {
                return shared.shutdown().await;
            }
            let Some(written) = shared.write_all_until_stopped(chunk).await else {
                return shared.shutdown().await;
            };
            if let Err(err) = written {
                tracing::debug!(error = %err, "connection write failed");
                return shared.fail();
            }
            if std::mem::take(&mut shared.lock().blocked) {
                shared.room.notify_waiters();
            }
        }
    }
    // Stopped between frames: what was queued before the stop (a refusal, a last answer) still goes
    // out, within a bound, so a peer that does not read cannot hold the task. A sender in the middle
    // of its own write keeps the socket; then nothing more is sent.
    let rest = {
        let mut state = shared.lock();
        state.closed = true;
        let owned = !state.writing || state.unsent.is_some();
        state.writing = true;
        let mut rest = state.unsent.take().unwrap_or_default();
        rest.extend_from_slice(&state.pending.split());
        owned.then_some(rest)
    };
    shared.room.notify_waiters();
    if let Some(rest) = rest {
        let _ = tokio::time::timeout(FLUSH_ON_STOP, shared.write_all(rest)).await;
        shared.shutdown().await;
    }
}

impl Shared {
    /// Closes the write side, within the flush bound.
    async fn shutdown(&self) {
        let close = std::future::poll_fn(|cx| {
            let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
            io.as_mut().poll_shutdown(cx)
        });
        let _ = tokio::time::timeout(FLUSH_ON_STOP, close).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// What is queued counts against the budget until the socket takes it: a frame that does not
    /// fit is refused as `Full`, written bytes are given back, and so is whatever a connection that
    /// ends still held.
    #[tokio::test]
    async fn queued_output_counts_against_the_budget_until_written() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let budget = Budget::new(10_000);
        let outbox = spawn_within(ours, CancellationToken::new(), Some(budget.clone()));
        let frame = Bytes::from(vec![7u8; 4000]);
        assert_eq!(outbox.try_send(&frame), Ok(()));
        assert_eq!(outbox.try_send(&frame), Ok(()));
        // At most 1024 bytes are in the pipe: 12,000 bytes would not fit in 10,000.
        assert_eq!(outbox.try_send(&frame), Err(SendFailure::Full));
        assert!(
            (8000 - 1024..=8000).contains(&budget.used()),
            "{}",
            budget.used()
        );

        let mut read = vec![0u8; 8000];
        theirs.read_exact(&mut read).await.expect("both frames");
        for _ in 0..100 {
            if budget.used() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(budget.used(), 0, "written bytes are given back");

        // A connection that ends with output queued gives it back too.
        assert_eq!(outbox.try_send(&frame), Ok(()));
        assert_eq!(outbox.try_send(&frame), Ok(()));
        assert!(budget.used() > 0);
        drop(theirs);
        drop(outbox);
        for _ in 0..1000 {
            if budget.used() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            budget.used(),
            0,
            "a closed connection gives back what it held"
        );
    }
}
