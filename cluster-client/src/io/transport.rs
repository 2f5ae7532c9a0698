//! The transport seam: a connection is a boxed read half and a boxed write half, whatever carries
//! them. Loopback TCP is the one transport today; a Unix socket would add its own `connect` and
//! `split` here and nothing else would change.

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use crate::protocol::{FrameCodec, PacketCodec};

/// The read half of a connection.
pub(crate) type ReadHalf = Pin<Box<dyn AsyncRead + Send>>;

/// The write half of a connection.
pub(crate) type WriteHalf = Pin<Box<dyn AsyncWrite + Send>>;

/// Packets read from a connection.
pub(crate) type PacketReader = FramedRead<ReadHalf, PacketCodec>;

/// Frames read from a connection, their connection objects left to the reader.
pub(crate) type FrameReader = FramedRead<ReadHalf, FrameCodec>;

/// Splits a loopback TCP stream, with Nagle's algorithm off (the writer coalesces frames itself).
pub(crate) fn split_tcp(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
    let (read, write) = stream.into_split();
    (Box::pin(read), Box::pin(write))
}

/// Connects to the leader's port on 127.0.0.1.
pub(crate) async fn connect(port: u16) -> std::io::Result<(ReadHalf, WriteHalf)> {
    TcpStream::connect(("127.0.0.1", port)).await.map(split_tcp)
}

/// Reads packets of at most `max_frame_size` bytes from `read`.
pub(crate) fn reader(read: ReadHalf, max_frame_size: usize) -> PacketReader {
    FramedRead::new(read, PacketCodec::new(max_frame_size))
}

/// Reads frames of at most `max_frame_size` bytes from `read`.
pub(crate) fn frame_reader(read: ReadHalf, max_frame_size: usize) -> FrameReader {
    FramedRead::new(read, FrameCodec::new(max_frame_size))
}
