//! Who is on the other end of a loopback TCP connection: [`tcp_peer_uid`] asks the kernel's socket tables, through the
//! `NETLINK_SOCK_DIAG` netlink interface, for the one TCP socket at a given
//! 4-tuple (an exact `SOCK_DIAG_BY_FAMILY` lookup, not a dump: one request,
//! one answer, a hash lookup in the kernel) and returns the uid that owns it.
//!
//! Linux only.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use netlink_packet_core::{
    ErrorBuffer, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    Parseable,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, SockDiagMessage, TCP_LISTEN,
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
};
use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

/// `INET_DIAG_NOCOOKIE`: a cookie of all ones tells the kernel not to match on
/// the socket cookie (a zero cookie would be compared, and never match).
const NO_COOKIE: [u8; 8] = [0xff; 8];

/// Size of the one buffer every answer is read into. An answer to an exact
/// lookup without extensions is about 150 bytes; an `NLMSG_ERROR` echoing our
/// request is 108.
const RECV_BUF_LEN: usize = 8192;

/// Sequence numbers for requests, so an answer can be matched to its request.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

/// The user that owns the TCP socket at `peer` connected to `local` (the far
/// end of a connection this process accepted), from the kernel's socket
/// tables; `Ok(None)` if the kernel has no such socket (it closed meanwhile).
///
/// `local` and `peer` are what `accept` gave (`TcpStream::local_addr` and
/// `TcpStream::peer_addr` of the accepted stream). The kernel is asked for the
/// socket whose *source* is `peer` and whose *destination* is `local`, which is
/// the connecting side's socket. This is meaningful when that socket lives in
/// the same network namespace as the caller, as it does on loopback.
///
/// IPv4 and IPv6 are both supported; IPv4-mapped IPv6 addresses (a dual-stack
/// listener accepting an IPv4 client) are looked up as the IPv4 connection
/// they are.
///
/// The uid returned is the one recorded when the socket was created (the
/// owner of its socket inode), mapped into the caller's user namespace (a uid
/// with no mapping there comes back as the overflow uid, usually 65534).
///
/// `Ok(None)` is returned when no process owns a socket at that 4-tuple any
/// more:
/// - the kernel has no socket there (`ENOENT`);
/// - the socket is in `TIME_WAIT`, or was closed by its process and lingers
///   only as an orphan finishing its shutdown (the kernel reports no inode for
///   those; older kernels also report uid 0 for them, which must not be
///   believed);
/// - the kernel's lookup fell back to a *listening* socket bound to the
///   peer's port, which is not the socket that was asked for.
///
/// Note that a kernel built without TCP socket diagnostics
/// (`CONFIG_INET_TCP_DIAG`, module `tcp_diag`) also answers `ENOENT`, so
/// callers that use this for access control should treat `None` as "deny".
///
/// # Errors
///
/// An [`io::Error`] if `local` and `peer` are not of the same address family,
/// if the netlink socket cannot be opened or used, if the kernel answers with
/// an error other than `ENOENT`, or if its answer is malformed or is not the
/// answer to this request.
pub(super) fn tcp_peer_uid(local: SocketAddr, peer: SocketAddr) -> io::Result<Option<u32>> {
    let (family, src, dst) = match (peer.ip().to_canonical(), local.ip().to_canonical()) {
        (src @ IpAddr::V4(_), dst @ IpAddr::V4(_)) => (AF_INET, src, dst),
        (src @ IpAddr::V6(_), dst @ IpAddr::V6(_)) => (AF_INET6, src, dst),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "tcp_peer_uid: local address {local} and peer address {peer} \
                     are not of the same address family"
                ),
            ));
        }
    };
    // A link-local IPv6 peer socket is bound to its interface, and the kernel
    // only matches it when asked with that interface; elsewhere this is 0.
    let interface_id = match peer {
        SocketAddr::V6(v6) if family == AF_INET6 => v6.scope_id(),
        _ => 0,
    };
    let wanted = SocketId {
        source_port: peer.port(),
        destination_port: local.port(),
        source_address: src,
        destination_address: dst,
        interface_id,
        cookie: NO_COOKIE,
    };

    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut header = NetlinkHeader::default();
    // NLM_F_REQUEST without NLM_F_DUMP: the kernel looks the one socket up.
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: wanted.clone(),
        })
        .into(),
    );
    request.finalize();
    let mut request_bytes = vec![0u8; request.buffer_len()];
    request.serialize(&mut request_bytes);

    // A fresh socket per lookup: nothing but the answer to this request can
    // ever arrive on it, and no state is shared between threads.
    let socket = Socket::new(NETLINK_SOCK_DIAG)
        .map_err(|e| context(e, "cannot open a NETLINK_SOCK_DIAG socket"))?;
    // Connected to the kernel (port 0): datagrams from anyone else are dropped.
    socket
        .connect(&netlink_sys::SocketAddr::new(0, 0))
        .map_err(|e| context(e, "cannot connect the netlink socket to the kernel"))?;

    let sent = retry_eintr(|| socket.send(&request_bytes, 0))
        .map_err(|e| context(e, "cannot send the sock_diag request"))?;
    if sent != request_bytes.len() {
        return Err(invalid_data(format!(
            "sock_diag request sent only in part ({sent} of {} bytes)",
            request_bytes.len()
        )));
    }

    let mut buf = [0u8; RECV_BUF_LEN];
    // MSG_TRUNC: the length returned is the datagram's, so truncation shows.
    let received = retry_eintr(|| socket.recv(&mut &mut buf[..], libc::MSG_TRUNC))
        .map_err(|e| context(e, "cannot receive the sock_diag answer"))?;
    if received > buf.len() {
        return Err(invalid_data(format!(
            "sock_diag answer of {received} bytes does not fit the {RECV_BUF_LEN}-byte buffer"
        )));
    }
    let message = NetlinkBuffer::new_checked(&buf[..received])
        .map_err(|e| invalid_data(format!("malformed sock_diag answer: {e}")))?;
    if message.sequence_number() != seq {
        return Err(invalid_data(format!(
            "sock_diag answer has sequence number {}, expected {seq}",
            message.sequence_number()
        )));
    }

    match message.message_type() {
        NLMSG_ERROR => {
            let error = ErrorBuffer::new_checked(message.payload())
                .map_err(|e| invalid_data(format!("malformed sock_diag error answer: {e}")))?;
            match error.code() {
                None => Err(invalid_data(
                    "sock_diag answered with an acknowledgement instead of a socket".to_owned(),
                )),
                Some(code) if code.get() == -libc::ENOENT => Ok(None),
                Some(code) => Err(context(
                    io::Error::from_raw_os_error(code.get().saturating_abs()),
                    "the kernel refused the sock_diag lookup",
                )),
            }
        }
        SOCK_DIAG_BY_FAMILY => {
            // Only the fixed-size inet_diag_msg is needed; the attributes that
            // follow it (which vary between kernels) are left unparsed.
            let found = InetResponseHeader::parse(message.payload())
                .map_err(|e| invalid_data(format!("malformed sock_diag socket answer: {e}")))?;
            // inet_lookup() falls back to a listener on the source port when
            // no connection matches: that is not the socket asked for.
            if found.state == TCP_LISTEN {
                return Ok(None);
            }
            if !same_socket(&found.socket_id, &wanted) {
                return Err(invalid_data(format!(
                    "sock_diag answered about socket {}:{} -> {}:{}, not the one asked for",
                    found.socket_id.source_address,
                    found.socket_id.source_port,
                    found.socket_id.destination_address,
                    found.socket_id.destination_port,
                )));
            }
            // No inode: TIME_WAIT, or an orphan its process has closed. No
            // process owns it, and its uid field may read 0.
            if found.inode == 0 {
                return Ok(None);
            }
            Ok(Some(found.uid))
        }
        other => Err(invalid_data(format!(
            "sock_diag answered with unexpected netlink message type {other}"
        ))),
    }
}

/// Whether the kernel's answer is about the 4-tuple that was asked for
/// (comparing IPv4-mapped IPv6 addresses as the IPv4 addresses they are).
fn same_socket(found: &SocketId, wanted: &SocketId) -> bool {
    found.source_port == wanted.source_port
        && found.destination_port == wanted.destination_port
        && found.source_address.to_canonical() == wanted.source_address
        && found.destination_address.to_canonical() == wanted.destination_address
}

/// Runs a system call again as long as it is interrupted by a signal.
fn retry_eintr<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// The same error, with what was being done put in front of its message.
fn context(error: io::Error, what: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

/// An [`io::ErrorKind::InvalidData`] error with that message.
fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// A connected pair: (client side, accepted side).
    fn pair(
        listen_on: SocketAddr,
        connect_to: Option<SocketAddr>,
    ) -> io::Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind(listen_on)?;
        let mut target = listener.local_addr()?;
        if let Some(c) = connect_to {
            target.set_ip(c.ip());
        }
        let client = TcpStream::connect(target)?;
        let (accepted, _) = listener.accept()?;
        Ok((client, accepted))
    }

    fn lookup(accepted: &TcpStream) -> io::Result<Option<u32>> {
        tcp_peer_uid(accepted.local_addr()?, accepted.peer_addr()?)
    }

    #[test]
    fn own_connection_ipv4() {
        let (_client, accepted) = pair((Ipv4Addr::LOCALHOST, 0).into(), None).expect("connect");
        assert_eq!(lookup(&accepted).expect("lookup"), Some(euid()));
    }

    #[test]
    fn own_connection_ipv6() {
        let Ok((_client, accepted)) = pair((Ipv6Addr::LOCALHOST, 0).into(), None) else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        assert!(accepted.local_addr().expect("ok").is_ipv6());
        assert_eq!(lookup(&accepted).expect("lookup"), Some(euid()));
    }

    #[test]
    fn own_connection_ipv4_mapped_on_dual_stack_listener() {
        // A [::] listener accepting an IPv4 client sees ::ffff:127.0.0.1 addresses.
        let Ok((_client, accepted)) = pair(
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            Some((Ipv4Addr::LOCALHOST, 0).into()),
        ) else {
            eprintln!("no dual-stack listener here; skipped");
            return;
        };
        let local = accepted.local_addr().expect("ok");
        if let SocketAddr::V6(v6) = local {
            assert!(v6.ip().to_ipv4_mapped().is_some(), "{local}");
        }
        assert_eq!(lookup(&accepted).expect("lookup"), Some(euid()));
    }

    #[test]
    fn other_user_as_root() {
        if euid() != 0 {
            eprintln!("not root; skipped");
            return;
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("ok").port();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port} && sleep 2"))
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn bash as uid 65534");
        listener.set_nonblocking(true).expect("ok");
        let deadline = Instant::now() + Duration::from_secs(10);
        let accepted = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(status) = child.try_wait().expect("ok") {
                        panic!("child exited before connecting: {status}");
                    }
                    assert!(Instant::now() < deadline, "child never connected");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        let result = lookup(&accepted);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(result.expect("lookup"), Some(65534));
    }

    #[test]
    fn unknown_tuple_is_none() {
        // Two ports nobody listens on or connects from.
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("ok")
            .local_addr()
            .expect("ok");
        let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("ok")
            .local_addr()
            .expect("ok");
        // (both listeners are dropped at the end of each statement)
        assert_eq!(tcp_peer_uid(a, b).expect("lookup"), None);

        let a6: SocketAddr = (Ipv6Addr::LOCALHOST, a.port()).into();
        let b6: SocketAddr = (Ipv6Addr::LOCALHOST, b.port()).into();
        assert_eq!(tcp_peer_uid(a6, b6).expect("lookup"), None);
    }

    #[test]
    fn closed_connection_is_none() {
        let (client, accepted) = pair((Ipv4Addr::LOCALHOST, 0).into(), None).expect("connect");
        let (local, peer) = (
            accepted.local_addr().expect("ok"),
            accepted.peer_addr().expect("ok"),
        );
        assert_eq!(tcp_peer_uid(local, peer).expect("ok"), Some(euid()));
        // The client closes first: its socket goes FIN_WAIT2 (orphan), then
        // TIME_WAIT once the accepted side closes too. Neither has an owner.
        drop(client);
        assert_eq!(
            tcp_peer_uid(local, peer).expect("lookup after client close"),
            None
        );
        drop(accepted);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            tcp_peer_uid(local, peer).expect("lookup after both closed"),
            None
        );
    }

    #[test]
    fn listener_on_peer_port_is_not_reported() {
        // Asking about "peer" = a listening socket's address: the kernel's lookup
        // falls back to that listener, which must not be taken for the peer.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("ok");
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("ok");
        let got = tcp_peer_uid(
            other.local_addr().expect("ok"),
            listener.local_addr().expect("ok"),
        );
        assert_eq!(got.expect("lookup"), None);
    }

    #[test]
    fn mixed_families_are_rejected() {
        let v4: SocketAddr = (Ipv4Addr::LOCALHOST, 1).into();
        let v6: SocketAddr = (Ipv6Addr::LOCALHOST, 2).into();
        let err = tcp_peer_uid(v4, v6).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
