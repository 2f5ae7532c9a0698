//! [`Inspector`]: what the cluster on an endpoint is, for a process of the same user (the
//! `inspect` example is a command line around it). It joins the endpoint the way a follower does,
//! proving the cluster secret when auth is on, on a reserved channel, and asks the port's leader
//! process for the stats of every channel it leads there.

use std::sync::Arc;

use tokio::time::Instant;

use crate::error::Error;
use crate::follower::{FollowerConn, JoinError};
use crate::options::Options;
use crate::server::INSPECT_CHANNEL;
use crate::service::Schema;
use crate::stats::Stats;

/// The schema an inspecting process registers with: no methods.
static INSPECT_SCHEMA: Schema = Schema {
    name: INSPECT_CHANNEL,
    fingerprint: 0,
    methods: &[],
};

/// A connection to the process that holds an endpoint, asking what it leads there.
///
/// ```no_run
/// # async fn show() -> Result<(), cluster_client::Error> {
/// use cluster_client::{Inspector, Options};
///
/// let inspector = Inspector::connect(&Options::default().port(7777)).await?;
/// for channel in inspector.channels().await? {
///     println!("{}: leader pid {:?}, {} followers", channel.channel, channel.leader.pid, channel.followers.len());
/// }
/// # Ok(())
/// # }
/// ```
pub struct Inspector {
    conn: Arc<FollowerConn>,
    options: Options,
}

impl Inspector {
    /// Connects to the endpoint of `options` (its port or Unix socket, its runtime directory and
    /// cluster secret, `auth` and `connect_timeout`).
    ///
    /// # Errors
    ///
    /// [`Error::NoLeader`] when nothing listens there; [`Error::ForeignPeer`] when what answers is
    /// not a process of this cluster (it says what was found); [`Error::Refused`] when the leader
    /// refuses (another user's secret, too many connections); [`Error::Auth`] when the secret
    /// cannot be read.
    pub async fn connect(options: &Options) -> Result<Inspector, Error> {
        let mut options = options.clone();
        options.secret = options
            .resolve_secret()
            .map_err(|err| Error::Auth(Arc::new(err)))?;
        match FollowerConn::join(&options, &INSPECT_SCHEMA, INSPECT_CHANNEL).await {
            Ok(conn) => Ok(Inspector { conn, options }),
            Err(JoinError::Refused(err)) => Err(err),
            Err(JoinError::Unreachable(err)) => Err(Error::NoLeader {
                port: options.port,
                channel: INSPECT_CHANNEL.to_owned(),
                waited_ms: 0,
                reason: err.to_string(),
            }),
            Err(other) => Err(Error::ForeignPeer {
                port: options.port,
                found: other.found().unwrap_or_default(),
            }),
        }
    }

    /// The stats of every channel the endpoint's process leads, by channel name.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] past `response_timeout`; [`Error::LeaderLost`] when the process went
    /// away.
    pub async fn channels(&self) -> Result<Vec<Stats>, Error> {
        let timeout = self.options.response_timeout;
        self.conn
            .channel_stats(Instant::now() + timeout, timeout)
            .await
            .map_err(|err| err.into_error("stats"))
    }
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("port", &self.options.port)
            .field("transport", &self.options.transport)
            .finish()
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        self.conn.close();
    }
}
