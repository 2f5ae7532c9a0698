//! The leader of one channel: owns the real client, runs calls from its own process and from
//! followers, and fans subscriptions out.
//!
//! This file holds the channel and its term (start, stop); the rest of its methods are split by
//! concern: [`register`] answers a follower's registration, [`connection`] serves a follower
//! connection (the port server hands it over through [`Serve`](crate::server::Serve)), [`calls`]
//! runs calls on the real client, [`subscribe`] attaches subscriptions to [`topics`], the fan-out.

mod calls;
mod connection;
mod load;
mod publishes;
mod register;
mod stats;
mod subscribe;
mod topics;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::io::throttle::Throttle;
use crate::io::writer::{Flush, Outbox};
use crate::options::Options;
use crate::protocol::conn::LeaderLeaving;
use crate::protocol::{ConnObject, Packet};
use crate::server::Lease;
use crate::service::{MethodKind, MethodSpec, Schema, Service, ServiceError};
use crate::stats::Failover;
use crate::term::Term;
use load::Load;
use publishes::Publishes;
use stats::{CallCounters, Traffic};
use topics::Topics;

/// An admitted follower connection, as the channel knows it.
struct Follower {
    /// The follower's process id, if it said it (a follower of this crate does; the Node package's
    /// does not).
    pid: Option<u32>,
    /// Where its answers, pushes and notices go (and how many bytes went).
    outbox: Outbox,
    /// Bytes read from it.
    bytes_in: Arc<AtomicU64>,
}

impl Follower {
    /// A follower of this crate can move to a successor when this leader leaves.
    fn movable(&self) -> bool {
        self.pid.is_some()
    }

    /// Tells it this leader is leaving (`resigned`: its real client is broken).
    fn tell_leaving(&self, resigned: bool) {
        let leaving = Packet::request(
            0,
            0,
            ConnObject::LeaderLeaving(LeaderLeaving { resigned }),
            Bytes::new(),
        );
        connection::send(&self.outbox, &leaving, Flush::Handoff);
    }
}

/// One channel's leadership term.
pub(crate) struct LeaderChannel {
    name: String,
    schema: &'static Schema,
    options: Options,
    /// The term: its number, and its signals as the real client sees them (upstream back,
    /// resign).
    term: Term,
    service: Arc<dyn Service>,
    topics: Arc<Topics>,
    /// The publishes served, to send again when the upstream comes back.
    publishes: Publishes,
    next_conn: AtomicU64,
    /// Fires when the channel stops; every follower connection ends with it.
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Limits the warnings that followers can provoke (failed calls, refused subscriptions, closed
    /// connections).
    warnings: Throttle,
    /// The channel on the port server that routes followers here; unset in single mode.
    lease: OnceLock<Lease>,
    /// The admitted follower connections, by id.
    followers: Mutex<HashMap<u64, Follower>>,
    /// Raised whenever one of `followers` closes.
    moved: Notify,
    /// Set, under the `followers` lock, when this leader tells its followers it is leaving: a
    /// follower admitted later is told at once.
    leaving: AtomicBool,
    /// When the term began.
    since: SystemTime,
    /// The calls on the real client in this term.
    calls: CallCounters,
    /// What the followers' calls that wait on the real client hold, against the channel's caps.
    load: Arc<Load>,
    /// The bytes of follower connections that have closed.
    closed_traffic: Traffic,
    /// The failover that began this term, if one did.
    failover: OnceLock<Failover>,
}

impl LeaderChannel {
    pub(crate) fn new(
        name: String,
        schema: &'static Schema,
        options: Options,
        term: Term,
        service: Arc<dyn Service>,
    ) -> Arc<Self> {
        let topics = Arc::new(Topics::new(
            options.codec,
            (options.resubscribe_backoff, options.resubscribe_backoff_max),
        ));
        let publishes = Publishes::new(
            options.max_publishes_per_follower,
            options.max_publish_bytes_per_follower,
        );
        let load = Load::new(options.max_calls, options.max_call_bytes);
        let channel = Arc::new(LeaderChannel {
            name,
            schema,
            options,
            term,
            service,
            topics,
            publishes,
            next_conn: AtomicU64::new(1),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            warnings: Throttle::for_peer_warnings(),
            lease: OnceLock::new(),
            followers: Mutex::default(),
            moved: Notify::new(),
            leaving: AtomicBool::new(false),
            since: SystemTime::now(),
            calls: CallCounters::default(),
            load,
            closed_traffic: Traffic::default(),
            failover: OnceLock::new(),
        });
        channel.watch_upstream();
        channel
    }

    /// Sends the remembered publishes again at each `Term::upstream_restored`, until the term
    /// stops.
    fn watch_upstream(self: &Arc<Self>) {
        let (term, stop, channel) = (self.term.clone(), self.stop.clone(), Arc::downgrade(self));
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = term.restored() => {}
                }
                let Some(channel) = channel.upgrade() else {
                    return;
                };
                // A stopping leader does not wait for the replay.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = channel.republish() => {}
                }
            }
        });
    }

    /// Resolves when the real client resigns the term.
    pub(crate) async fn resigned(&self) {
        self.term.resigned().await;
    }

    /// Keeps the channel's lease on the port server, to give the channel up when the term stops.
    pub(crate) fn hold(&self, lease: Lease) {
        let _ = self.lease.set(lease);
    }

    /// Whether the real client has served every broadcast subscription an item.
    pub(crate) fn subscriptions_served(&self) -> bool {
        self.topics.all_served()
    }

    /// The latest item of the topic (method, key), if it has one.
    pub(crate) fn latest_item(&self, method: &'static str, key: &Arc<str>) -> Option<Bytes> {
        self.topics.latest_item(&topics::TopicKey {
            method,
            key: Arc::clone(key),
        })
    }

    /// The leadership term.
    pub(crate) fn epoch(&self) -> u64 {
        self.term.epoch()
    }

    /// Stops the term. The channel is given up on the port first, so that a follower can take it;
    /// then the followers are handed over ([`hand_over`](Self::hand_over)); then every follower
    /// connection and subscription ends, and the real client is closed.
    pub(crate) async fn stop(&self) {
        if let Some(lease) = self.lease.get() {
            lease.release();
        }
        self.hand_over().await;
        self.stop.cancel();
        self.topics.clear();
        self.tasks.close();
        self.tasks.wait().await;
        Arc::clone(&self.service).close().await;
        self.term.end();
    }

    /// Tells every follower that can move that this leader is leaving, then answers their calls
    /// and pushes their items until each has moved to the successor and closed its connection, or
    /// `handover_timeout` has passed.
    async fn hand_over(&self) {
        let told = {
            let followers = self.followers();
            self.leaving.store(true, Ordering::Relaxed);
            let movable: Vec<_> = followers.values().filter(|f| f.movable()).collect();
            for follower in &movable {
                follower.tell_leaving(self.term.has_resigned());
            }
            movable.len()
        };
        if told == 0 {
            return;
        }
        tracing::debug!(channel = %self.name, followers = told, "leaving: handing the followers over");
        let all_moved = async {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.movable_left() == 0 {
                    return;
                }
                moved.await;
            }
        };
        if tokio::time::timeout(self.options.handover_timeout, all_moved)
            .await
            .is_err()
        {
            tracing::warn!(channel = %self.name, left = self.movable_left(), timeout = ?self.options.handover_timeout, "followers did not move in time; closing their connections");
        }
    }

    /// Admits a follower connection; one admitted while this leader is leaving is told so at once
    /// (the lock orders it with [`hand_over`](Self::hand_over), which tells those admitted before).
    fn add_follower(&self, conn: u64, follower: Follower) {
        let mut followers = self.followers();
        if self.leaving.load(Ordering::Relaxed) && follower.movable() {
            follower.tell_leaving(self.term.has_resigned());
        }
        followers.insert(conn, follower);
    }

    fn followers(&self) -> MutexGuard<'_, HashMap<u64, Follower>> {
        self.followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many follower connections are open.
    #[cfg(test)]
    pub(crate) fn follower_count(&self) -> usize {
        self.followers().len()
    }

    /// How many open follower connections can move to a successor.
    fn movable_left(&self) -> usize {
        self.followers().values().filter(|f| f.movable()).count()
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
