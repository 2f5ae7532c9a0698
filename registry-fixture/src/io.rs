//! Framing shared by the server and the client: a bounded line reader and a coalescing writer.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Upper bound on the bytes one writer pass gathers before it writes them out.
const COALESCE_MAX: usize = 64 * 1024;

/// Why [`LineReader::next_line`] stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    /// A line was longer than the limit.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The peer closed the connection in the middle of a line.
    #[error("connection closed in the middle of a line")]
    Truncated,
    /// The socket failed (reset, ...).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads `\n`-terminated lines of at most `max` bytes (the `\n` excluded) into a reused buffer.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps `inner`; lines longer than `max` bytes are an error.
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(16 * 1024, inner),
            line: Vec::with_capacity(1024),
            max,
        }
    }

    /// The next line without its `\n`, or `None` at a clean end of stream.
    pub(crate) async fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        self.line.clear();
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return if self.line.is_empty() {
                    Ok(None)
                } else {
                    Err(LineError::Truncated)
                };
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    if self.line.len() + end > self.max {
                        return Err(LineError::TooLong { max: self.max });
                    }
                    self.line.extend_from_slice(&available[..end]);
                    self.inner.consume(end + 1);
                    return Ok(Some(&self.line));
                }
                None => {
                    let n = available.len();
                    if self.line.len() + n > self.max {
                        return Err(LineError::TooLong { max: self.max });
                    }
                    self.line.extend_from_slice(available);
                    self.inner.consume(n);
                }
            }
        }
    }
}

/// Writes every queued line to `out`, gathering the lines already queued into one write.
/// Returns when the queue is closed (after shutting the write side down) or a write fails.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut out: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut batch: Vec<u8> = Vec::new();
    while let Some(first) = queue.recv().await {
        match queue.try_recv() {
            Err(_) => out.write_all(&first).await?,
            Ok(second) => {
                batch.extend_from_slice(&first);
                batch.extend_from_slice(&second);
                while batch.len() < COALESCE_MAX {
                    match queue.try_recv() {
                        Ok(next) => batch.extend_from_slice(&next),
                        Err(_) => break,
                    }
                }
                out.write_all(&batch).await?;
                batch.clear();
                if batch.capacity() > 4 * COALESCE_MAX {
                    batch.shrink_to(COALESCE_MAX);
                }
            }
        }
    }
    out.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_and_enforces_the_limit() {
        let data: &[u8] = b"one\ntwo\n\nthree-is-long\n";
        let mut reader = LineReader::new(data, 8);
        assert_eq!(reader.next_line().await.ok().flatten(), Some(&b"one"[..]));
        assert_eq!(reader.next_line().await.ok().flatten(), Some(&b"two"[..]));
        assert_eq!(reader.next_line().await.ok().flatten(), Some(&b""[..]));
        assert!(matches!(
            reader.next_line().await,
            Err(LineError::TooLong { max: 8 })
        ));
    }

    #[tokio::test]
    async fn end_of_stream_is_clean_only_between_lines() {
        let mut reader = LineReader::new(&b"a\n"[..], 8);
        assert_eq!(reader.next_line().await.ok().flatten(), Some(&b"a"[..]));
        assert!(matches!(reader.next_line().await, Ok(None)));
        let mut reader = LineReader::new(&b"partial"[..], 8);
        assert!(matches!(
            reader.next_line().await,
            Err(LineError::Truncated)
        ));
    }
}
