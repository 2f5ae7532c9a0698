//! The command line: the seam, the upstream, the channels and the runtime's options.

use std::time::Duration;

use cluster_client::{Options, Role, Transport};

/// What the command line asks for.
pub struct Args {
    /// `generated` (the default) or `manual`: see [`crate::client`].
    pub seam: String,
    /// Print the runtime's `tracing` events up to this level.
    pub log: Option<tracing::Level>,
    pub upstream: String,
    /// One client per channel name, all on the same port.
    pub channels: Vec<String>,
    pub options: Options,
}

/// Parses the process's arguments.
pub fn parse_args() -> Result<Args, String> {
    let mut seam = "generated".to_owned();
    let mut upstream = String::new();
    let mut channels = vec!["registry".to_owned()];
    let mut options = Options::default();
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| e.to_string())
        };
        match flag.as_str() {
            "--seam" => seam = value()?,
            "--channels" => channels = value()?.split(',').map(str::to_owned).collect(),
            "--upstream" => upstream = value()?,
            "--port" => options = options.port(value()?.parse().map_err(|e| format!("{e}"))?),
            "--role" => {
                options = options.role(match value()?.as_str() {
                    "leader" => Role::Leader,
                    "follower" => Role::Follower,
                    _ => Role::Auto,
                })
            }
            "--heartbeat-ms" => options = options.heartbeat_interval(ms(value()?)?),
            "--response-ms" => options = options.response_timeout(ms(value()?)?),
            "--max-wait-ms" => options = options.max_wait_time(ms(value()?)?),
            "--connect-ms" => options = options.connect_timeout(ms(value()?)?),
            "--single" => options = options.single_mode(true),
            "--register-ms" => options = options.register_timeout(ms(value()?)?),
            "--max-connections" => {
                options = options.max_connections(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-calls" => {
                options =
                    options.max_calls_per_follower(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-unproven" => {
                options =
                    options.max_unproven_connections(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-subs" => {
                options = options
                    .max_subscriptions_per_follower(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--max-buffered-bytes" => {
                options = options.max_buffered_bytes(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--frame-ms" => options = options.frame_timeout(ms(value()?)?),
            "--no-auth" => options = options.auth(false),
            "--secret" => options = options.secret(cluster_client::Secret::new(value()?)),
            "--runtime-dir" => options = options.runtime_dir(Some(value()?.into())),
            "--transport" => {
                options = options.transport(match value()?.as_str() {
                    "tcp" => Transport::Tcp,
                    "unix" => Transport::Unix,
                    other => return Err(format!("unknown transport {other}: tcp or unix")),
                })
            }
            "--log" => {
                log = Some(
                    value()?
                        .parse::<tracing::Level>()
                        .map_err(|e| format!("{e}"))?,
                )
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        seam,
        log,
        upstream,
        channels,
        options,
    })
}
