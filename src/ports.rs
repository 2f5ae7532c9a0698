//! Free loopback ports.

/// A loopback port that nothing listens on right now (the OS picks it; it may be taken again by
/// the time it is used, which is as good as tests and the benchmark need).
pub fn try_free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// [`try_free_port`], panicking if the OS has no port to give.
pub fn free_port() -> u16 {
    try_free_port().expect("a free loopback port")
}
