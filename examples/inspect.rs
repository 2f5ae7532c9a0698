//! What the cluster on a port (or Unix socket) is: the first thing to run when one misbehaves.
//!
//! ```text
//! cargo run --example inspect -- --port 7777 [--watch] [--interval-ms 1000]
//! cargo run --example inspect -- --socket /run/user/1000/cluster-client/port-7777.sock
//! ```
//!
//! Run as the user of the cluster (it proves the same cluster secret as a member; `--no-auth` for
//! a cluster without). For each channel the port's process leads, it prints the leader's pid and
//! term, its followers, its topics and their subscribers, and its calls per second (from two
//! snapshots `--interval-ms` apart). With `--watch` it keeps printing a fresh view. When nothing
//! listens, or something that is no leader of this cluster holds the port, it says so and exits
//! with status 1.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cluster_client::stats::Stats;
use cluster_client::{Error, Inspector, Options, Transport};
use lexopt::prelude::*;

/// What to look at, and how.
struct Args {
    options: Options,
    /// What the user named: the port or the socket.
    target: String,
    watch: bool,
    interval: Duration,
}

fn parse() -> Result<Args, String> {
    let text = |err: lexopt::Error| err.to_string();
    // Something that accepts and says nothing is reported after two seconds, not ten.
    let mut options = Options::default().connect_timeout(Duration::from_secs(2));
    let mut target = None;
    let (mut watch, mut interval) = (false, Duration::from_secs(1));
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(text)? {
        match arg {
            Long("port") => {
                let port: u16 = parser.value().map_err(text)?.parse().map_err(text)?;
                options = options.port(port);
                target = Some(format!("127.0.0.1:{port}"));
            }
            Long("socket") => {
                let path = PathBuf::from(parser.value().map_err(text)?);
                let port = socket_port(&path)?;
                let dir = path.parent().map(PathBuf::from).unwrap_or_default();
                options = options
                    .port(port)
                    .transport(Transport::Unix)
                    .runtime_dir(Some(dir));
                target = Some(path.display().to_string());
            }
            Long("runtime-dir") => {
                options = options.runtime_dir(Some(parser.value().map_err(text)?.into()));
            }
            Long("no-auth") => options = options.auth(false),
            Long("connect-ms") => {
                let ms: u64 = parser.value().map_err(text)?.parse().map_err(text)?;
                options = options.connect_timeout(Duration::from_millis(ms));
            }
            Long("watch") => watch = true,
            Long("interval-ms") => {
                let ms: u64 = parser.value().map_err(text)?.parse().map_err(text)?;
                interval = Duration::from_millis(ms.max(50));
            }
            Short('h') | Long("help") => return Err(String::new()),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let target = target.ok_or("--port or --socket is required")?;
    Ok(Args {
        options,
        target,
        watch,
        interval,
    })
}

/// The port in a socket's name, `port-<port>.sock`, as the runtime names them.
fn socket_port(path: &std::path::Path) -> Result<u16, String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("port-")?.strip_suffix(".sock"))
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: not a cluster socket (port-<port>.sock)",
                path.display()
            )
        })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    cluster_client_workspace::log_to_stderr();
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("inspect: {message}");
            }
            eprintln!(
                "usage: inspect (--port P | --socket PATH) [--runtime-dir DIR] [--no-auth] [--connect-ms N] [--watch] [--interval-ms N]"
            );
            return ExitCode::from(2);
        }
    };
    let inspector = match Inspector::connect(&args.options).await {
        Ok(inspector) => inspector,
        Err(err) => {
            println!("{}", unreachable_reason(&args.target, &err));
            return ExitCode::FAILURE;
        }
    };
    let Some(mut before) = snapshot(&inspector, &args.target).await else {
        return ExitCode::FAILURE;
    };
    loop {
        tokio::time::sleep(args.interval).await;
        let Some(now) = snapshot(&inspector, &args.target).await else {
            return ExitCode::FAILURE;
        };
        if args.watch && std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", render(&args.target, &before, &now));
        if !args.watch {
            return ExitCode::SUCCESS;
        }
        println!();
        before = now;
    }
}

/// The channels' stats, and when they were read; `None` (said aloud) when the process went away.
async fn snapshot(inspector: &Inspector, target: &str) -> Option<(Instant, Vec<Stats>)> {
    match inspector.channels().await {
        Ok(channels) => Some((Instant::now(), channels)),
        Err(err) => {
            println!("{target}: the leader process stopped answering: {err}");
            None
        }
    }
}

/// Why nothing could be inspected, in a sentence.
fn unreachable_reason(target: &str, err: &Error) -> String {
    match err {
        Error::NoLeader { reason, .. } => format!("nothing listens on {target} ({reason})"),
        Error::ForeignPeer { found, .. } => {
            format!("{target} is held by something that is not a cluster-client leader: {found}")
        }
        other => format!("{target}: cannot inspect: {other}"),
    }
}

/// The view of the channels at `now`, with calls per second since `before`.
fn render(target: &str, before: &(Instant, Vec<Stats>), now: &(Instant, Vec<Stats>)) -> String {
    let (then, old) = before;
    let (at, channels) = now;
    let seconds = at.duration_since(*then).as_secs_f64().max(1e-9);
    let leader = channels.first().and_then(|c| c.leader.pid);
    let mut out = format!(
        "{target}: process {} leads {} channel(s)\n",
        leader.map_or("?".to_owned(), |pid| pid.to_string()),
        channels.len()
    );
    for channel in channels {
        let calls = channel.calls.served + channel.calls.failed;
        let earlier = old
            .iter()
            .find(|c| c.channel == channel.channel && c.epoch == channel.epoch)
            .map_or(calls, |c| c.calls.served + c.calls.failed);
        let rate = calls.saturating_sub(earlier) as f64 / seconds;
        out.push_str(&format!("\n{channel}\n  calls per second: {rate:.1}\n"));
    }
    out
}
