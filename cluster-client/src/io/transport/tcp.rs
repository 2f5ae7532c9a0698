//! Loopback TCP: the leader is whoever binds `127.0.0.1:<port>`.

use std::io::ErrorKind;

use tokio::net::{TcpListener, TcpStream};

use super::{Accepted, ReadHalf, WriteHalf};

/// Binds `127.0.0.1:port`: `Ok(None)` if another process has it.
pub(super) fn bind(port: u16) -> std::io::Result<Option<TcpListener>> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener).map(Some)
        }
        Err(err) if err.kind() == ErrorKind::AddrInUse => Ok(None),
        Err(err) => Err(err),
    }
}

/// The next connection on `listener`.
pub(super) async fn accept(listener: &TcpListener) -> std::io::Result<Accepted> {
    let (stream, peer) = listener.accept().await?;
    let uid = peer_uid(&stream, peer);
    let (read, write) = split(stream);
    Ok(Accepted {
        read,
        write,
        peer: peer.to_string(),
        uid,
    })
}

/// The user of the process at the far end of an accepted connection, from the kernel's socket
/// tables, before any byte is read; `None` when the kernel does not say (the peer left already,
/// or the kernel has no socket diagnostics), and the proof of the secret decides alone.
#[cfg(target_os = "linux")]
fn peer_uid(stream: &TcpStream, peer: std::net::SocketAddr) -> Option<u32> {
    let local = stream.local_addr().ok()?;
    super::peer_uid::tcp_peer_uid(local, peer).unwrap_or_else(|err| {
        tracing::debug!(error = %err, "the kernel did not say who the peer is");
        None
    })
}

/// Elsewhere the proof of the secret decides alone.
#[cfg(not(target_os = "linux"))]
fn peer_uid(_: &TcpStream, _: std::net::SocketAddr) -> Option<u32> {
    None
}

/// Connects to the leader's port on 127.0.0.1.
pub(super) async fn connect(port: u16) -> std::io::Result<(ReadHalf, WriteHalf)> {
    TcpStream::connect(("127.0.0.1", port)).await.map(split)
}

/// Splits a loopback TCP stream, with Nagle's algorithm off (the writer coalesces frames itself).
fn split(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
    let (read, write) = stream.into_split();
    (Box::pin(read), Box::pin(write))
}
