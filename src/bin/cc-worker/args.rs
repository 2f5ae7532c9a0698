//! The command line: the seam, the upstream, the channels and the runtime's options.

use std::time::Duration;

use cluster_client::{Options, Role, Transport};
use lexopt::prelude::*;

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
pub fn parse_args() -> Result<Args, lexopt::Error> {
    let mut seam = "generated".to_owned();
    let mut upstream = String::new();
    let mut channels = vec!["registry".to_owned()];
    let mut options = Options::default();
    let mut log = None;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        let ms = |parser: &mut lexopt::Parser| -> Result<Duration, lexopt::Error> {
            Ok(Duration::from_millis(parser.value()?.parse()?))
        };
        options = match arg {
            Long("seam") => {
                seam = parser.value()?.string()?;
                options
            }
            Long("channels") => {
                let list = parser.value()?.string()?;
                channels = list.split(',').map(str::to_owned).collect();
                options
            }
            Long("upstream") => {
                upstream = parser.value()?.string()?;
                options
            }
            Long("log") => {
                log = Some(parser.value()?.parse::<tracing::Level>()?);
                options
            }
            Long("port") => options.port(parser.value()?.parse()?),
            Long("role") => options.role(match parser.value()?.string()?.as_str() {
                "leader" => Role::Leader,
                "follower" => Role::Follower,
                _ => Role::Auto,
            }),
            Long("transport") => options.transport(match parser.value()?.string()?.as_str() {
                "tcp" => Transport::Tcp,
                "unix" => Transport::Unix,
                other => return Err(format!("unknown transport {other}: tcp or unix").into()),
            }),
            Long("heartbeat-ms") => options.heartbeat_interval(ms(&mut parser)?),
            Long("response-ms") => options.response_timeout(ms(&mut parser)?),
            Long("max-wait-ms") => options.max_wait_time(ms(&mut parser)?),
            Long("connect-ms") => options.connect_timeout(ms(&mut parser)?),
            Long("register-ms") => options.register_timeout(ms(&mut parser)?),
            Long("frame-ms") => options.frame_timeout(ms(&mut parser)?),
            Long("single") => options.single_mode(true),
            Long("max-connections") => options.max_connections(parser.value()?.parse()?),
            Long("max-calls") => options.max_calls_per_follower(parser.value()?.parse()?),
            Long("max-unproven") => options.max_unproven_connections(parser.value()?.parse()?),
            Long("max-subs") => options.max_subscriptions_per_follower(parser.value()?.parse()?),
            Long("max-buffered-bytes") => options.max_buffered_bytes(parser.value()?.parse()?),
            Long("no-auth") => options.auth(false),
            Long("retry-factory") => options.retry_factory(true),
            Long("codec") => {
                let name = parser.value()?.string()?;
                let codec = cluster_client::Codec::from_name(&name)
                    .ok_or_else(|| format!("unknown codec {name}"))?;
                options.codec(codec)
            }
            Long("secret") => {
                options.secret(cluster_client::Secret::new(parser.value()?.string()?))
            }
            Long("runtime-dir") => options.runtime_dir(Some(parser.value()?.into())),
            _ => return Err(arg.unexpected()),
        };
    }
    Ok(Args {
        seam,
        log,
        upstream,
        channels,
        options,
    })
}
