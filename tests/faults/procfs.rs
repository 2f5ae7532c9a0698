//! Readings from `/proc`: a process's memory, CPU time and state, and the TCP sockets on a port.

/// The resident set size of a process, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("a VmRSS line")
}

/// CPU time a process used so far (user + system), in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The command name may hold spaces and parentheses: the fields start after the last `)`.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The process state letter (`R`, `S`, `T` for stopped, …).
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    stat[stat.rfind(')').expect("comm") + 2..]
        .chars()
        .next()
        .expect("a state")
}

/// TCP socket states (`/proc/net/tcp` codes: 0x01 established, 0x08 close-wait, …) of every IPv4
/// socket whose local port is `port`: on a leader's port, the leader's side of each connection
/// (and its listening socket, 0x0A).
pub fn tcp_states(port: u16) -> Vec<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            let local = columns.nth(1)?;
            let state = columns.nth(1)?;
            local
                .ends_with(&want)
                .then(|| u8::from_str_radix(state, 16).ok())
                .flatten()
        })
        .collect()
}

/// `/proc/net/tcp` state codes.
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_CLOSE_WAIT: u8 = 0x08;
