//! One writer task per connection: it takes encoded frames from a queue and coalesces whatever is
//! queued into one write.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Packet, ProtocolError};

/// Frames taken from the queue per write, at most.
const BATCH: usize = 256;

/// How long a stopped writer may spend sending what was queued before the stop.
const FLUSH_ON_STOP: std::time::Duration = std::time::Duration::from_millis(500);

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
        if let Err(err) = write_batch(&mut io, &mut frames, &mut buf).await {
            tracing::debug!(error = %err, "connection write failed");
            stop.cancel();
            return;
        }
    }
    // Stopped: what was queued before the stop (a refusal, a last answer) still goes out, within a
    // bound, so a peer that does not read cannot hold the task.
    while let Ok(frame) = rx.try_recv() {
        frames.push(frame);
    }
    let flush = async {
        write_batch(&mut io, &mut frames, &mut buf).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(FLUSH_ON_STOP, flush).await;
    stop.cancel();
}

/// Writes `frames` as one write (or the single frame as it is) and empties the list.
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &mut Vec<Bytes>,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let result = match frames.as_slice() {
        [] => Ok(()),
        [one] => io.write_all(one).await,
        many => {
            buf.clear();
            for frame in many {
                buf.extend_from_slice(frame);
            }
            io.write_all(buf).await
        }
    };
    frames.clear();
    result
}
