//! A stand-alone registry server, the upstream system of the demos.
//!
//! ```text
//! upstream-registry [--addr 127.0.0.1:PORT]     (default 127.0.0.1:0)
//! ```
//!
//! Prints `listening <addr>` on stdout, then reads admin commands from stdin, one per line:
//!
//! - `set <service> <host:port,host:port,...>`: replace the service's endpoints (an empty list
//!   when the second argument is missing); prints `ok`.
//! - `stats`: prints the server's counters as one JSON line.
//! - `quit`: exits.
//!
//! It also exits when stdin closes. Errors go to stderr, one line each.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;

use cluster_client_registry_fixture::{Endpoint, RegistryServer};
use tokio::sync::mpsc;

const USAGE: &str = "usage: upstream-registry [--addr HOST:PORT]";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let addr = match parse_args(std::env::args().skip(1)) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match RegistryServer::start(addr.as_str()).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    say(&format!("listening {}", server.local_addr()));

    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        match run_command(&server, &line) {
            Ok(Command::Continue(Some(output))) => say(&output),
            Ok(Command::Continue(None)) => {}
            Ok(Command::Quit) => break,
            Err(message) => eprintln!("error: {message}"),
        }
    }
    server.shutdown();
    ExitCode::SUCCESS
}

/// What to do after a command.
enum Command {
    /// Keep reading; print this line, if any.
    Continue(Option<String>),
    /// Exit.
    Quit,
}

fn run_command(server: &RegistryServer, line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    match words.next() {
        None => Ok(Command::Continue(None)),
        Some("set") => {
            let service = words.next().ok_or("usage: set <service> <host:port,...>")?;
            let endpoints = match words.next() {
                Some(list) => parse_endpoints(list)?,
                None => Vec::new(),
            };
            if words.next().is_some() {
                return Err("usage: set <service> <host:port,...> (no spaces in the list)".into());
            }
            server.set(service, endpoints);
            Ok(Command::Continue(Some("ok".into())))
        }
        Some("stats") => serde_json::to_string(&server.stats())
            .map(|json| Command::Continue(Some(json)))
            .map_err(|err| err.to_string()),
        Some("quit") => Ok(Command::Quit),
        Some(other) => Err(format!("unknown command `{other}` (set, stats, quit)")),
    }
}

fn parse_endpoints(list: &str) -> Result<Vec<Endpoint>, String> {
    list.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (host, port) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("`{item}` is not host:port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|err| format!("bad port in `{item}`: {err}"))?;
            if host.is_empty() {
                return Err(format!("empty host in `{item}`"));
            }
            Ok(Endpoint::new(host, port))
        })
        .collect()
}

/// The address to listen on, or `None` when help was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<String>, String> {
    use lexopt::prelude::*;
    let mut addr = "127.0.0.1:0".to_owned();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        match arg {
            Long("addr") => {
                addr = parser
                    .value()
                    .and_then(|value| value.string())
                    .map_err(|err| err.to_string())?;
            }
            Short('h') | Long("help") => return Ok(None),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(Some(addr))
}

/// Reads stdin on a plain thread (the process's only blocking reader) and hands over its lines;
/// the channel closes when stdin does.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) => {
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(err) => {
                    eprintln!("stdin: {err}");
                    break;
                }
            }
        }
    });
    rx
}

/// Prints one line on stdout and flushes it, so a parent reading a pipe sees it at once.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not take the server down.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
