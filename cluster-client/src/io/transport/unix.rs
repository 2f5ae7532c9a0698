//! A Unix-domain socket in this user's private directory: `port-<port>.sock`, led by whichever
//! process holds the `flock` of `port-<port>.lock` beside it.
//!
//! The kernel releases the lock when its holder dies, however it dies, so the lock (not the socket
//! file, which a dead leader leaves behind) says who leads: a process that takes the lock removes any
//! socket file it finds, which can only be stale, and binds a fresh one. A leader that stops removes
//! its socket file before it lets the lock go. Each side reads the other's uid from the socket
//! (`SO_PEERCRED`) and serves or joins only its own user.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use tokio::net::{UnixListener, UnixStream};

use super::{Accepted, ReadHalf, WriteHalf, own_uid};

/// The socket of the cluster named `port` in `dir`.
pub(super) fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("port-{port}.sock"))
}

/// The lock file whose holder leads the cluster named `port` in `dir`.
fn lock_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("port-{port}.lock"))
}

/// A bound socket and the lock that makes this process its leader. Dropping it removes the socket
/// file, then releases the lock.
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// Held for the flock; closed (releasing it) after the socket file is gone.
    _lock: File,
}

/// Takes the lock of the cluster named `port` in `dir` and binds its socket: `Ok(None)` if another
/// process holds the lock.
pub(super) fn bind(dir: &Path, port: u16) -> std::io::Result<Option<Bound>> {
    let lock_path = lock_path(dir, port);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|err| at(&lock_path, err))?;
    match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
        Err(err) => return Err(at(&lock_path, err.into())),
    }
    let path = socket_path(dir, port);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed a stale socket file"),
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(at(&path, err)),
    }
    let listener = UnixListener::bind(&path).map_err(|err| at(&path, err))?;
    Ok(Some(Bound {
        listener,
        path,
        _lock: lock,
    }))
}

impl Bound {
    /// The next connection, with its peer's credentials.
    pub(super) async fn accept(&self) -> std::io::Result<Accepted> {
        let (stream, _) = self.listener.accept().await?;
        let cred = stream.peer_cred()?;
        let peer = match cred.pid() {
            Some(pid) => format!("pid {pid}"),
            None => "a process".to_owned(),
        };
        let (read, write) = split(stream);
        Ok(Accepted {
            read,
            write,
            peer,
            uid: Some(cred.uid()),
        })
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        // The lock is still held here, so the file is this process's own socket.
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %err, "could not remove the socket file");
        }
    }
}

/// Connects to the socket of the cluster named `port` in `dir`; refuses a leader of another user.
pub(super) async fn connect(dir: &Path, port: u16) -> std::io::Result<(ReadHalf, WriteHalf)> {
    let path = socket_path(dir, port);
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|err| at(&path, err))?;
    let uid = stream.peer_cred()?.uid();
    let own = own_uid();
    if uid != own {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} is served by uid {uid}, not by this user ({own})",
                path.display()
            ),
        ));
    }
    Ok(split(stream))
}

fn split(stream: UnixStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.into_split();
    (Box::pin(read), Box::pin(write))
}

/// `err`, with the path it happened on.
fn at(path: &Path, err: Error) -> Error {
    Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed when the guard drops (a failed test's included).
    fn scratch_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("scratch dir")
    }

    /// The lock decides who leads: a second bind fails while the first holds it; a socket file
    /// left by a leader that is gone is replaced; the accepted peer is this user; a leader that
    /// stops removes its socket file.
    #[tokio::test]
    async fn the_lock_decides_and_stale_sockets_are_replaced() {
        let scratch = scratch_dir();
        let dir = scratch.path();
        // A stale socket file, bound by nobody now.
        drop(std::os::unix::net::UnixListener::bind(socket_path(dir, 1)).expect("bind"));
        assert!(socket_path(dir, 1).exists());
        assert!(
            UnixStream::connect(socket_path(dir, 1)).await.is_err(),
            "stale"
        );

        let bound = bind(dir, 1).expect("bind").expect("the lock is free");
        assert!(bind(dir, 1).expect("bind").is_none(), "the lock is held");
        let (connected, accepted) = tokio::join!(connect(dir, 1), bound.accept());
        connected.expect("connects to the fresh socket");
        let accepted = accepted.expect("accepts");
        assert_eq!(accepted.uid, Some(own_uid()));

        drop(bound);
        assert!(!socket_path(dir, 1).exists(), "removed by its leader");
        let again = bind(dir, 1).expect("bind");
        assert!(again.is_some(), "the lock was released");
        drop(again);
    }
}
