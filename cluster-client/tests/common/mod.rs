//! What the runtime's own integration tests share. (The root package's end-to-end tests have theirs
//! in its library; this package cannot depend on that one.)

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
