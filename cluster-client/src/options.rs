//! [`Options`]: how a handle finds its cluster and how long it waits for things.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{AuthError, Secret, dir};
use crate::protocol::DEFAULT_MAX_FRAME_SIZE;
use crate::transcode::Codec;

/// The environment variable that overrides the default port.
pub const PORT_ENV: &str = "CLUSTER_CLIENT_PORT";
/// The Node package's environment variable for the default port, read when [`PORT_ENV`] is unset,
/// so that Rust and Node processes started with the same environment meet on the same port.
pub const NODE_PORT_ENV: &str = "NODE_CLUSTER_CLIENT_PORT";
/// The environment variable that turns single mode on when set to `1` or `true`.
pub const SINGLE_MODE_ENV: &str = "CLUSTER_CLIENT_SINGLE_MODE";
/// The port used when neither the options nor [`PORT_ENV`] give one.
pub const DEFAULT_PORT: u16 = 7777;

/// Which role a process may take in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Role {
    /// Try to be leader; follow whoever holds the port otherwise (the default).
    #[default]
    Auto,
    /// Be leader or fail with [`Error::PortTaken`](crate::Error::PortTaken).
    Leader,
    /// Never lead: wait up to `max_wait_time` for a leader, or fail with
    /// [`Error::NoLeader`](crate::Error::NoLeader).
    Follower,
}

/// How the members of a cluster reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Loopback TCP on `127.0.0.1:<port>`: the leader is whoever binds the port (the default, and
    /// the Node package's way).
    #[default]
    Tcp,
    /// A Unix-domain socket, `port-<port>.sock` in the private `runtime_dir` (Linux and other
    /// Unixes): the leader is whoever holds the `flock` of `port-<port>.lock` there, which the
    /// kernel releases when it dies. Only processes of this user can reach the socket, and each side
    /// checks the other's uid.
    Unix,
}

/// What a subscription does when its consumer falls behind by a whole buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop the oldest buffered item to make room, so the consumer always gets the latest (the
    /// default: subscriptions carry state, and the newest state is what matters).
    #[default]
    KeepLatest,
    /// End the stream with [`Error::Lagged`](crate::Error::Lagged).
    Close,
}

/// Settings of one handle. Build from [`Options::new`] or [`Default`], then chain the setters.
///
/// ```
/// use std::time::Duration;
/// use cluster_client::Options;
///
/// let options = Options::new("registry")
///     .port(7788)
///     .response_timeout(Duration::from_secs(5));
/// assert_eq!(options.port, 7788);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The channel name; `None` (the default) means the trait's name.
    pub name: Option<String>,
    /// The loopback port of the election, or with [`Transport::Unix`] the number that names the
    /// socket. Default [`DEFAULT_PORT`] (7777), or [`PORT_ENV`] when set, else [`NODE_PORT_ENV`].
    pub port: u16,
    /// The role this process may take. Default [`Role::Auto`].
    pub role: Role,
    /// How long a follower-only handle waits for a leader. Default 30 s.
    pub max_wait_time: Duration,
    /// How long connecting and registering with a leader may take, the leader's real client start-up
    /// included. Default 10 s.
    pub connect_timeout: Duration,
    /// What `create()` does when this process wins the first election and its factory fails (the
    /// upstream is down, say): `false` (the default) fails at once with [`Error::Factory`](crate::Error::Factory)
    /// (crate::Error::Factory); `true` gives the port up and runs the election again, with
    /// backoff, until a real client is built here or elsewhere, or `connect_timeout` has passed.
    /// After the first election, a failed factory is always retried.
    pub retry_factory: bool,
    /// The deadline of an invoke without its own `timeout_ms`, and of a heartbeat's answer. Default 3 s.
    pub response_timeout: Duration,
    /// How often a follower sends a heartbeat; a leader closes connections silent for three intervals
    /// (checked every three quarters of an interval, so it closes them within three and three quarters).
    /// Default 20 s.
    pub heartbeat_interval: Duration,
    /// Whether followers send heartbeats and leaders close silent connections. Default `true`.
    pub heartbeat_check: bool,
    /// When set, a subscription with no first item within it ends with
    /// [`Error::SubscribeTimeout`](crate::Error::SubscribeTimeout). Default `None` (wait forever).
    pub subscribe_timeout: Option<Duration>,
    /// The application-object codec; every process of a channel must use the same one. Default
    /// [`Codec::Bincode`] in every build; `create()` fails with
    /// [`CodecError::Unavailable`](crate::transcode::CodecError::Unavailable) when the codec's
    /// feature is off.
    pub codec: Codec,
    /// No cluster: the handle wraps the real client in this process. Default `false`, or `true` when
    /// [`SINGLE_MODE_ENV`] is `1` or `true`.
    pub single_mode: bool,
    /// The largest frame accepted or sent, header included. Default 8 MiB.
    pub max_frame_size: usize,
    /// How many items a subscription buffers for a slow consumer. Default 1024.
    pub subscription_buffer: usize,
    /// How many bytes of items a subscription buffers for a slow consumer (one larger item is still
    /// taken into an empty buffer). Default 16 MiB.
    pub subscription_buffer_bytes: usize,
    /// What a full subscription buffer does. Default [`SlowConsumer::KeepLatest`].
    pub slow_consumer: SlowConsumer,
    /// How many follower connections a leader's port accepts at once. Default 1024.
    pub max_connections: usize,
    /// How many calls one follower may have in flight at its leader, each counted until its answer
    /// is queued. Default 4096.
    pub max_calls_per_follower: usize,
    /// How many followers' calls may wait on a leader's real client at once, all followers
    /// together; one more is answered `overloaded`. Default 65,536.
    pub max_calls: usize,
    /// How many bytes of arguments those calls may hold, all followers together; a call that
    /// would pass it is answered `overloaded`. Default 256 MiB.
    pub max_call_bytes: usize,
    /// The longest deadline a leader grants a follower's call. A call that asks for more runs with
    /// this one; a call that asks for none (a timeout of 0 or less on the wire) runs with
    /// `response_timeout`. Default 10 minutes.
    pub max_call_timeout: Duration,
    /// How many distinct subscriptions one follower may hold at its leader. Default 1024.
    pub max_subscriptions_per_follower: usize,
    /// The longest subscription key a leader takes from a follower, in bytes. Default 4 KiB.
    pub max_key_len: usize,
    /// How many topics (distinct subscriptions, each with its upstream subscription) a leader runs
    /// at once. Default 16,384.
    pub max_topics: usize,
    /// Only processes that prove they hold the cluster secret join, and a follower joins only a
    /// leader that proves it too (a challenge and response at registration; the secret never
    /// crosses the socket). Default `true`. Turn it off in every process of a channel to let
    /// processes without the secret in, such as the Node package's.
    pub auth: bool,
    /// The cluster secret. Default `None`: each process reads it from the file `port-<port>.secret`
    /// in `runtime_dir`, and the first one to need it creates it there with 32 random bytes.
    pub secret: Option<Secret>,
    /// How members reach each other. Default [`Transport::Tcp`], as the Node package.
    pub transport: Transport,
    /// Where this user's cluster files are: the secret files, and with [`Transport::Unix`] the
    /// sockets (`port-<port>.sock`) and their lock files (`port-<port>.lock`). Default `None`:
    /// `$XDG_RUNTIME_DIR/cluster-client`, else `<temp dir>/cluster-client-<uid>`. The directory must
    /// be this user's and private (0700), each secret file too (0600), or `create()` fails with
    /// [`Error::Auth`](crate::Error::Auth) saying how to fix it.
    pub runtime_dir: Option<PathBuf>,
    /// How many connections a leader's port holds that have not yet registered (and, with auth on,
    /// proved the cluster secret): their own budget, apart from `max_connections`, so that they
    /// never take a member's place. Default 64.
    pub max_unproven_connections: usize,
    /// How long a new connection has to send `register_channel`. Default 5 s.
    pub register_timeout: Duration,
    /// How many bytes a leader buffers for all its followers together: frames of 64 KiB or more
    /// that have begun to arrive but are not whole, and output queued but not yet written. A frame
    /// that would go past it closes the connection it came on (or is going to). Default 64 MiB.
    pub max_buffered_bytes: usize,
    /// How long a frame may take to arrive whole at a leader, from its first bytes; a follower that
    /// sends part of a frame and stalls is closed after it. Default 10 s.
    pub frame_timeout: Duration,
    /// How long a leader that closes waits for its followers to move to a successor, answering
    /// their calls and pushing their items meanwhile, before it closes their connections and its
    /// real client. Default 10 s.
    pub handover_timeout: Duration,
    /// How many distinct `#[publish]` calls a leader remembers per follower (and for its own
    /// process), to send again at `Term::upstream_restored`; more are served but not remembered.
    /// Default 1024.
    pub max_publishes_per_follower: usize,
    /// How many bytes of arguments of those publishes a leader remembers per follower (and for
    /// its own process); a publish past them is served but not remembered. Default 1 MiB.
    pub max_publish_bytes_per_follower: usize,
    /// The first pause before a `#[subscribe(resubscribe)]` topic whose real-client stream failed
    /// is subscribed upstream again; it doubles per failure in a row, up to
    /// `resubscribe_backoff_max`. Default 100 ms.
    pub resubscribe_backoff: Duration,
    /// The longest pause between upstream resubscriptions. Default 5 s.
    pub resubscribe_backoff_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: None,
            port: env_port().unwrap_or(DEFAULT_PORT),
            role: Role::Auto,
            max_wait_time: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry_factory: false,
            response_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(20),
            heartbeat_check: true,
            subscribe_timeout: None,
            codec: Codec::default(),
            single_mode: env_flag(SINGLE_MODE_ENV),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            subscription_buffer: 1024,
            subscription_buffer_bytes: 16 << 20,
            slow_consumer: SlowConsumer::KeepLatest,
            max_connections: 1024,
            max_calls_per_follower: 4096,
            max_calls: 65_536,
            max_call_bytes: 256 << 20,
            max_call_timeout: Duration::from_secs(600),
            max_subscriptions_per_follower: 1024,
            max_key_len: 4096,
            max_unproven_connections: 64,
            max_topics: 16_384,
            register_timeout: Duration::from_secs(5),
            max_buffered_bytes: 64 << 20,
            frame_timeout: Duration::from_secs(10),
            max_publishes_per_follower: 1024,
            max_publish_bytes_per_follower: 1 << 20,
            resubscribe_backoff: Duration::from_millis(100),
            resubscribe_backoff_max: Duration::from_secs(5),
            handover_timeout: Duration::from_secs(10),
            auth: true,
            secret: None,
            transport: Transport::Tcp,
            runtime_dir: None,
        }
    }
}

/// Generates one chained setter per field.
macro_rules! setters {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}

impl Options {
    /// Default options with the channel name set.
    pub fn new(name: impl Into<String>) -> Self {
        Options::default().name(name)
    }

    /// Sets the channel name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets a first-item deadline for subscriptions.
    #[must_use]
    pub fn subscribe_timeout(mut self, timeout: Duration) -> Self {
        self.subscribe_timeout = Some(timeout);
        self
    }

    setters! {
        /// Sets the election port.
        port: u16,
        /// Sets the role.
        role: Role,
        /// Sets how long a follower-only handle waits for a leader.
        max_wait_time: Duration,
        /// Sets the connect-and-register deadline.
        connect_timeout: Duration,
        /// Sets whether `create()` retries a failed factory within `connect_timeout`.
        retry_factory: bool,
        /// Sets the default invoke and heartbeat deadline.
        response_timeout: Duration,
        /// Sets the heartbeat interval.
        heartbeat_interval: Duration,
        /// Turns heartbeats and idle checks on or off.
        heartbeat_check: bool,
        /// Sets the application-object codec.
        codec: Codec,
        /// Turns single mode on or off.
        single_mode: bool,
        /// Sets the frame size limit.
        max_frame_size: usize,
        /// Sets the per-subscription buffer.
        subscription_buffer: usize,
        /// Sets the per-subscription buffer in bytes.
        subscription_buffer_bytes: usize,
        /// Sets the slow-consumer policy.
        slow_consumer: SlowConsumer,
        /// Sets the leader's connection cap.
        max_connections: usize,
        /// Sets the per-follower cap on calls in flight.
        max_calls_per_follower: usize,
        /// Sets the channel-wide cap on followers' calls that wait on the real client.
        max_calls: usize,
        /// Sets the channel-wide cap on the bytes of arguments those calls hold.
        max_call_bytes: usize,
        /// Sets the longest deadline a leader grants a follower's call.
        max_call_timeout: Duration,
        /// Sets the per-follower cap on subscriptions.
        max_subscriptions_per_follower: usize,
        /// Sets the longest subscription key a leader takes.
        max_key_len: usize,
        /// Sets how many topics a leader runs at once.
        max_topics: usize,
        /// Turns the proof of the cluster secret on or off.
        auth: bool,
        /// Sets how members reach each other.
        transport: Transport,
        /// Sets where this user's cluster files are.
        runtime_dir: Option<PathBuf>,
        /// Sets how many connections that have not yet registered a port holds.
        max_unproven_connections: usize,
        /// Sets the time a connection has to register.
        register_timeout: Duration,
        /// Sets how many bytes a leader buffers for all its followers together.
        max_buffered_bytes: usize,
        /// Sets how long a frame may take to arrive whole at a leader.
        frame_timeout: Duration,
        /// Sets how long a leader that closes waits for its followers to move.
        handover_timeout: Duration,
        /// Sets how many publishes a leader remembers per follower.
        max_publishes_per_follower: usize,
        /// Sets how many bytes of publishes a leader remembers per follower.
        max_publish_bytes_per_follower: usize,
        /// Sets the first pause before a failed upstream subscription is subscribed again.
        resubscribe_backoff: Duration,
        /// Sets the longest pause between upstream resubscriptions.
        resubscribe_backoff_max: Duration,
    }

    /// Sets the cluster secret, instead of the one in the secret file.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The cluster secret these options use: `None` with `auth` off, else the one given, else the
    /// one in the secret file of this port (created if missing). With [`Transport::Unix`] it also
    /// makes sure the private directory of the socket is there.
    pub(crate) fn resolve_secret(&self) -> Result<Option<Secret>, AuthError> {
        if self.transport == Transport::Unix {
            dir::ensure_private_dir(&self.files_dir(), rustix::process::geteuid().as_raw())?;
        }
        if !self.auth {
            return Ok(None);
        }
        if let Some(secret) = &self.secret {
            return Ok(Some(secret.clone()));
        }
        Secret::load_or_create(&self.files_dir(), &format!("port-{}", self.port)).map(Some)
    }

    /// The directory of this user's cluster files: `runtime_dir`, else the default one.
    pub(crate) fn files_dir(&self) -> PathBuf {
        self.runtime_dir.clone().unwrap_or_else(dir::default_dir)
    }

    /// The channel name: the configured one, or `default` (the trait's name).
    pub fn channel<'a>(&'a self, default: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(default)
    }
}

/// The port of [`PORT_ENV`], else of [`NODE_PORT_ENV`].
fn env_port() -> Option<u16> {
    let port = |name| std::env::var(name).ok()?.trim().parse().ok();
    port(PORT_ENV).or_else(|| port(NODE_PORT_ENV))
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true"))
}
