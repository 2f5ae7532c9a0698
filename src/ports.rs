//! Free loopback ports.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// The ports this process has handed out: never handed out twice, since a port also names a
/// cluster's Unix socket, which does not hold the TCP port.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port that nothing listens on right now and that this process has not handed out
/// before (the OS picks it; another process may take it by the time it is used, which is as good as
/// tests and the benchmark need).
pub fn try_free_port() -> std::io::Result<u16> {
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..64 {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        "the OS gave only ports this process has handed out already",
    ))
}

/// [`try_free_port`], panicking if the OS has no port to give.
pub fn free_port() -> u16 {
    try_free_port().expect("a free loopback port")
}
