//! Readings from `/proc`: a process's memory, CPU time and state, and the TCP sockets on a port.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

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

/// How often [`PeakRss`] reads `VmRSS`.
const RSS_EVERY: Duration = Duration::from_millis(10);

/// At most this many readings (10 minutes at [`RSS_EVERY`]): every loop is bounded.
const RSS_MAX_SAMPLES: u32 = 60_000;

/// The highest `VmRSS` of a process while an attack runs: read every 10 ms by a task of the test,
/// from [`start`](PeakRss::start) until [`stop`](PeakRss::stop).
pub struct PeakRss {
    pid: u32,
    stop: Arc<AtomicBool>,
    task: JoinHandle<(u64, u32)>,
}

/// What [`PeakRss::stop`] read.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    /// The highest reading, in KiB.
    pub kib: u64,
    /// How many readings were taken.
    pub samples: u32,
}

impl PeakRss {
    /// Starts reading `pid`'s `VmRSS` (a first reading at once).
    pub fn start(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let (mut peak, mut samples) = (0, 0);
            while samples < RSS_MAX_SAMPLES {
                peak = peak.max(vm_rss_kib(pid));
                samples += 1;
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(RSS_EVERY).await;
            }
            (peak, samples)
        });
        PeakRss { pid, stop, task }
    }

    /// Stops the readings (after a last one) and returns the highest.
    pub async fn stop(self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        let (kib, samples) = self.task.await.expect("the RSS readings ran");
        // One more reading now: the peak includes the state the attack left.
        Peak {
            kib: kib.max(vm_rss_kib(self.pid)),
            samples: samples + 1,
        }
    }
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
///
/// The kernel writes the table in pieces, and a socket can be written twice when others open and
/// close meanwhile (a run read one connection seven times): each socket counts once, by its inode
/// (a socket in TIME_WAIT has none; those count by their addresses).
pub fn tcp_states(port: u16) -> Vec<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let want = format!(":{port:04X}");
    let mut seen = std::collections::HashSet::new();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state, inode) = (
                columns.get(1)?,
                columns.get(2)?,
                columns.get(3)?,
                columns.get(9)?,
            );
            let identity = match *inode {
                "0" => format!("{local}-{remote}"),
                inode => inode.to_owned(),
            };
            (local.ends_with(&want) && seen.insert(identity))
                .then(|| u8::from_str_radix(state, 16).ok())
                .flatten()
        })
        .collect()
}

/// `/proc/net/tcp` state codes.
pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_CLOSE_WAIT: u8 = 0x08;
