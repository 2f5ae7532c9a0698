//! The transport seam: where a cluster lives ([`Endpoint`]), how its leader claims it ([`bind`]) and
//! a follower reaches it ([`connect`]). A connection is a boxed read half and a boxed write half,
//! whatever carries them, so nothing past this module knows the transport.

#[cfg(target_os = "linux")]
mod peer_uid;
mod tcp;
mod unix;

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

use crate::options::{Options, Transport};
use crate::protocol::{FrameCodec, PacketCodec};

/// The read half of a connection.
pub(crate) type ReadHalf = Pin<Box<dyn AsyncRead + Send>>;

/// The write half of a connection.
pub(crate) type WriteHalf = Pin<Box<dyn AsyncWrite + Send>>;

/// Packets read from a connection.
pub(crate) type PacketReader = FramedRead<ReadHalf, PacketCodec>;

/// Frames read from a connection, their connection objects left to the reader.
pub(crate) type FrameReader = FramedRead<ReadHalf, FrameCodec>;

/// Where a cluster lives: a loopback port, or a Unix socket named by the port in a private
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    /// `127.0.0.1:<port>`.
    Tcp(u16),
    /// `<dir>/port-<port>.sock`, led by the holder of the lock on `<dir>/port-<port>.lock`.
    Unix {
        /// The port number that names the cluster.
        port: u16,
        /// The private directory of the socket and its lock file.
        dir: PathBuf,
    },
}

impl Endpoint {
    /// The endpoint `options` name.
    pub(crate) fn of(options: &Options) -> Endpoint {
        match options.transport {
            Transport::Tcp => Endpoint::Tcp(options.port),
            Transport::Unix => Endpoint::Unix {
                port: options.port,
                dir: options.files_dir(),
            },
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(port) => write!(f, "127.0.0.1:{port}"),
            Endpoint::Unix { port, dir } => {
                write!(f, "{}", unix::socket_path(dir, *port).display())
            }
        }
    }
}

/// A listening endpoint, held by this process as the cluster's leader.
pub(crate) enum Listener {
    /// A bound loopback port.
    Tcp(tokio::net::TcpListener),
    /// A bound socket with the lock that makes this process its leader.
    Unix(unix::Bound),
}

/// A connection accepted by a [`Listener`].
pub(crate) struct Accepted {
    /// Its read half.
    pub(crate) read: ReadHalf,
    /// Its write half.
    pub(crate) write: WriteHalf,
    /// The peer, for logs.
    pub(crate) peer: String,
    /// The user the peer runs as, when the kernel says (always over a Unix socket).
    pub(crate) uid: Option<u32>,
}

/// Takes the endpoint for this process: `Ok(None)` if another process leads it.
pub(crate) fn bind(endpoint: &Endpoint) -> std::io::Result<Option<Listener>> {
    match endpoint {
        Endpoint::Tcp(port) => Ok(tcp::bind(*port)?.map(Listener::Tcp)),
        Endpoint::Unix { port, dir } => Ok(unix::bind(dir, *port)?.map(Listener::Unix)),
    }
}

impl Listener {
    /// The next connection.
    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(listener) => tcp::accept(listener).await,
            Listener::Unix(bound) => bound.accept().await,
        }
    }
}

/// Connects to the leader of `endpoint`. Over a Unix socket, a leader that runs as another user is
/// refused with [`std::io::ErrorKind::PermissionDenied`].
pub(crate) async fn connect(endpoint: &Endpoint) -> std::io::Result<(ReadHalf, WriteHalf)> {
    match endpoint {
        Endpoint::Tcp(port) => tcp::connect(*port).await,
        Endpoint::Unix { port, dir } => unix::connect(dir, *port).await,
    }
}

/// This process's effective user id.
pub(crate) fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Reads packets of at most `max_frame_size` bytes from `read`.
pub(crate) fn reader(read: ReadHalf, max_frame_size: usize) -> PacketReader {
    FramedRead::new(read, PacketCodec::new(max_frame_size))
}

/// Reads frames of at most `max_frame_size` bytes from `read`.
pub(crate) fn frame_reader(read: ReadHalf, max_frame_size: usize) -> FrameReader {
    FramedRead::new(read, FrameCodec::new(max_frame_size))
}
