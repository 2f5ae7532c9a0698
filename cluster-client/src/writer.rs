//! One writer task per connection: it takes encoded frames from a queue and coalesces whatever is
//! queued into one write.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Packet, ProtocolError};

/// Frames taken from the queue per write, at most.
const BATCH: usize = 256;

/// The sending side of a connection's write queue. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Bytes>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The queue is full (only from [`Outbox::try_send`]).
    Full,
    /// The connection is gone.
    Closed,
}

impl Outbox {
    /// Queues a frame, waiting for room.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), SendFailure> {
        self.tx.send(frame).await.map_err(|_| SendFailure::Closed)
    }

    /// Queues a frame if there is room now.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), SendFailure> {
        self.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendFailure::Full,
            mpsc::error::TrySendError::Closed(_) => SendFailure::Closed,
        })
    }
}

/// Encodes one packet into its own frame.
pub(crate) fn encode(packet: &Packet) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::new();
    packet.encode(&mut buf)?;
    Ok(buf.freeze())
}

/// Starts the writer task of `io`; it ends when every [`Outbox`] is dropped, a write fails, or `stop`
/// fires, and then cancels `stop` so the reader side ends too.
pub(crate) fn spawn<W>(io: W, capacity: usize, stop: CancellationToken) -> Outbox
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(capacity.max(1));
    tokio::spawn(write_loop(io, rx, stop));
    Outbox { tx }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: W,
    mut rx: mpsc::Receiver<Bytes>,
    stop: CancellationToken,
) {
    let mut frames = Vec::with_capacity(BATCH);
    let mut buf = BytesMut::new();
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => 0,
            n = rx.recv_many(&mut frames, BATCH) => n,
        };
        if received == 0 {
            break;
        }
        let result = if frames.len() == 1 {
            io.write_all(&frames[0]).await
        } else {
            buf.clear();
            for frame in &frames {
                buf.extend_from_slice(frame);
            }
            io.write_all(&buf).await
        };
        frames.clear();
        if let Err(err) = result {
            tracing::debug!(error = %err, "connection write failed");
            break;
        }
    }
    let _ = io.shutdown().await;
    stop.cancel();
}
