//! The leader of one channel: owns the real client, runs calls from its own process and from
//! followers, and fans subscriptions out.
//!
//! This file holds the channel and its term (start, stop); the rest of its methods are split by
//! concern: [`register`] answers a follower's registration, [`connection`] serves a follower
//! connection (the port server hands it over through [`Serve`](crate::server::Serve)), [`calls`]
//! runs calls on the real client, [`subscribe`] attaches subscriptions to [`topics`], the fan-out.

mod calls;
mod connection;
mod register;
mod subscribe;
mod topics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::io::throttle::Throttle;
use crate::options::Options;
use crate::server::Lease;
use crate::service::{MethodKind, MethodSpec, Schema, Service, ServiceError};
use topics::Topics;

/// One channel's leadership term.
pub(crate) struct LeaderChannel {
    name: String,
    schema: &'static Schema,
    options: Options,
    epoch: u64,
    service: Arc<dyn Service>,
    topics: Arc<Topics>,
    next_conn: AtomicU64,
    /// Fires when the channel stops; every follower connection ends with it.
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Limits the warnings that followers can provoke (failed calls, refused subscriptions, closed
    /// connections).
    warnings: Throttle,
    /// The channel on the port server that routes followers here; unset in single mode.
    lease: OnceLock<Lease>,
}

impl LeaderChannel {
    pub(crate) fn new(
        name: String,
        schema: &'static Schema,
        options: Options,
        epoch: u64,
        service: Arc<dyn Service>,
    ) -> Arc<Self> {
        Arc::new(LeaderChannel {
            name,
            schema,
            options,
            epoch,
            service,
            topics: Arc::default(),
            next_conn: AtomicU64::new(1),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            warnings: Throttle::for_peer_warnings(),
            lease: OnceLock::new(),
        })
    }

    /// Keeps the channel's lease on the port server, to give the channel up when the term stops.
    pub(crate) fn hold(&self, lease: Lease) {
        let _ = self.lease.set(lease);
    }

    /// The leadership term.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Stops the term: ends every follower connection and subscription, then closes the real client.
    pub(crate) async fn stop(&self) {
        if let Some(lease) = self.lease.get() {
            lease.release();
        }
        self.stop.cancel();
        self.topics.clear("the leader closed");
        self.tasks.close();
        self.tasks.wait().await;
        Arc::clone(&self.service).close().await;
    }

    /// The schema's method `method` if it is of one of `kinds`.
    fn spec_for(
        &self,
        method: &str,
        kinds: &[MethodKind],
    ) -> Result<&'static MethodSpec, ServiceError> {
        let kind = kinds[0];
        self.schema
            .method(method)
            .filter(|spec| kinds.contains(&spec.kind))
            .ok_or_else(|| ServiceError::unknown(method, kind))
    }

    fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}
