//! [`Handle`]: what a generated `{Trait}Client` holds. It knows this process's role, runs the
//! election again when the leader is lost, and replays subscriptions and publishes on the new leader.
//!
//! This file holds the membership's state machine ([`State`]: electing, a role, unavailable, closed)
//! and the user's operations; [`role`] is where a call or a subscription goes for each role, and
//! [`supervise`] runs the elections.

mod role;
mod supervise;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::election::{self, Ballot, Factory};
use crate::error::Error;
use crate::follower::CallError;
use crate::mailbox::Mailbox;
use crate::options::Options;
use crate::protocol::{FaultCode, subscription_key};
use crate::role_change::{RoleFeed, Roles};
use crate::service::{MethodKind, MethodSpec, Reply, Schema};
use crate::stats::Stats;
use crate::subscription::Subscription;
use crate::transcode::Codec;
use role::Role;
use supervise::supervise;

/// Where calls go right now.
#[derive(Clone)]
enum State {
    /// An election runs; calls wait for it within their deadline.
    Electing,
    /// This process leads the channel, or follows its leader.
    Role(Role),
    /// Election rounds keep failing; calls fail at once with this error while they are retried.
    Unavailable(Error),
    /// `close()` was called.
    Closed,
}

/// The latest publish per (method, canonical JSON of the arguments): (argument count, framed
/// arguments).
type Publishes = HashMap<(&'static MethodSpec, String), (u32, Bytes)>;

/// One live subscription of this handle.
struct SubEntry {
    spec: &'static MethodSpec,
    key: Arc<str>,
    app: Bytes,
    mailbox: Arc<Mailbox>,
    /// The `subscribe_timeout` timer, stopped with the subscription.
    timer: Option<tokio::task::AbortHandle>,
}

impl Drop for SubEntry {
    fn drop(&mut self) {
        if let Some(timer) = &self.timer {
            timer.abort();
        }
    }
}

struct Inner {
    options: Options,
    schema: &'static Schema,
    channel: String,
    factory: Factory,
    state: watch::Sender<State>,
    subs: Mutex<HashMap<u64, SubEntry>>,
    next_sub: AtomicU64,
    publishes: Mutex<Publishes>,
    epoch: AtomicU64,
    /// This process's role at its latest change.
    roles: RoleFeed,
    shutdown: CancellationToken,
    /// The supervisor. `close()` waits for it, so that a real client it is closing (a resigned
    /// leader stepping down) or building (an election under way) is closed when `close()` returns.
    supervisor: TaskTracker,
}

/// A process's membership in one channel: leader or follower, across failovers.
///
/// Generated clients hold one; users call it through them. Cloning is cheap and shares the handle.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("channel", &self.inner.channel)
            .field("port", &self.inner.options.port)
            .field("leader", &self.is_leader())
            .field("epoch", &self.epoch())
            .finish()
    }
}

impl Handle {
    /// Joins the channel `options.name` (default: the schema's name): runs the election, builds the real
    /// client with `factory` if this process wins, and keeps the membership alive until
    /// [`close`](Self::close).
    pub async fn create(
        options: Options,
        schema: &'static Schema,
        factory: Factory,
    ) -> Result<Handle, Error> {
        options.codec.available()?;
        // From here on, `options.secret` is the secret in use: `Some` exactly when auth is on.
        let mut options = options;
        if !options.single_mode {
            options.secret = options
                .resolve_secret()
                .map_err(|err| Error::Auth(Arc::new(err)))?;
        }
        let inner = Inner::new(options, schema, factory);
        let (first, term) = if inner.options.single_mode {
            let leader = election::single(&inner.ballot(true)).await?;
            (Role::Leader(leader), None)
        } else {
            let (role, term) = Role::elected(inner.first_election().await?);
            (role, Some(term))
        };
        inner.set_state(State::Role(first), term);
        if !inner.options.single_mode {
            inner.supervisor.spawn(supervise(Arc::downgrade(&inner)));
        }
        Ok(Handle { inner })
    }

    /// Whether this process leads the channel now.
    pub fn is_leader(&self) -> bool {
        matches!(&*self.inner.state.borrow(), State::Role(role) if role.is_leader())
    }

    /// The current leadership term (0 before the first election ends).
    ///
    /// A new term is published after the role it comes with: whoever reads the term and then
    /// [`is_leader`](Self::is_leader) sees the role of that term, or of a later one.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// This process's role, now and at every change: leader or follower, the term, and who leads
    /// (their process id and when their term began).
    ///
    /// The receiver holds the current role at once (`borrow()`); `changed()` resolves at the next
    /// change: a failover, a handover, or a new leader after this process's leader left. An
    /// election in progress is no change: calls wait for it, and its outcome is the next change.
    /// When the handle closes, `changed()` fails: a loop over the changes ends.
    ///
    /// ```no_run
    /// # async fn watch_roles(handle: cluster_client::Handle) {
    /// let mut roles = handle.roles();
    /// while roles.changed().await.is_ok() {
    ///     let now = *roles.borrow_and_update();
    ///     println!("{:?} in term {} (leader pid {:?})", now.role, now.epoch, now.leader.pid);
    /// }
    /// # }
    /// ```
    pub fn roles(&self) -> Roles {
        self.inner.roles.subscribe()
    }

    /// A snapshot of the channel, filled by its leader: who leads and follows, the topics and
    /// their subscribers, the calls served, failed and in flight, the bytes in and out, and the
    /// failover that began the term. A follower asks the leader over the wire, within
    /// `response_timeout`.
    ///
    /// # Errors
    ///
    /// As a call's: no leader within the deadline ([`Error::Timeout`]), the leader lost meanwhile
    /// ([`Error::LeaderLost`]), the handle closed ([`Error::Closed`]), or a leader that does not
    /// answer `stats` (the Node package's: [`Error::Timeout`]).
    pub async fn stats(&self) -> Result<Stats, Error> {
        let timeout = self.inner.options.response_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let result = match self.inner.ready(deadline, "stats", timeout).await? {
                State::Role(role) => role.stats(deadline, timeout).await,
                State::Unavailable(err) => return Err(err),
                State::Closed => return Err(Error::Closed),
                State::Electing => continue,
            };
            match result {
                Ok(stats) => return Ok(stats),
                // Not sent: ask the next leader.
                Err(CallError::Unsent) => {}
                Err(CallError::Failed(err)) => return Err(err),
            }
        }
    }

    /// The application-object codec.
    pub fn codec(&self) -> Codec {
        self.inner.options.codec
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Refuses a method of another kind than the entry point's. The spec is the caller's (generated
    /// code passes its schema's own entry): nothing is looked up by name.
    fn expect_kind(&self, spec: &MethodSpec, kinds: &[MethodKind]) -> Result<(), Error> {
        if kinds.contains(&spec.kind) {
            return Ok(());
        }
        Err(Error::Remote {
            name: FaultCode::UnknownMethod,
            message: format!(
                "`{}` is not a method of this kind in {}",
                spec.name, self.inner.schema.name
            ),
        })
    }

    /// How long a call of `spec` may take: its own `timeout_ms`, else `Options::response_timeout`.
    pub fn deadline_of(&self, spec: &MethodSpec) -> Duration {
        spec.timeout_ms
            .map_or(self.inner.options.response_timeout, |ms| {
                Duration::from_millis(ms.into())
            })
    }

    /// Calls an invoke, oneway or publish method (`spec`, an entry of this handle's schema) with
    /// framed arguments.
    ///
    /// On a leader the real client runs it in this process; on a follower it goes to the leader. A call
    /// made during an election waits for it within the call's deadline, and so does a call that had
    /// not left this process when the leader was lost: it goes to the new leader. A call on the wire
    /// when the leader is lost fails at once with [`Error::LeaderLost`] (its outcome is unknown),
    /// unless its method is idempotent: then it is sent once more to the new leader.
    pub async fn call(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
    ) -> Result<Reply, Error> {
        self.expect_kind(
            spec,
            &[MethodKind::Invoke, MethodKind::Oneway, MethodKind::Publish],
        )?;
        let timeout = self.deadline_of(spec);
        let deadline = Instant::now() + timeout;
        let mut retried = false;
        loop {
            let state = self.inner.ready(deadline, spec.name, timeout).await?;
            let result = match state {
                State::Role(role) => role.call(spec, argc, app.clone(), deadline, timeout).await,
                State::Unavailable(err) => return Err(err),
                State::Closed => return Err(Error::Closed),
                State::Electing => continue,
            };
            match result {
                Ok(reply) => return Ok(reply),
                // This handle was closed while the call was in flight: that, not the leader, ended it.
                Err(_) if matches!(*self.inner.state.borrow(), State::Closed) => {
                    return Err(Error::Closed);
                }
                // Waits for the next leader (`ready` passes over the lost one).
                Err(CallError::Unsent) => {}
                Err(CallError::Failed(Error::LeaderLost { .. })) if spec.idempotent && !retried => {
                    retried = true;
                }
                Err(CallError::Failed(err)) => return Err(err),
            }
        }
    }

    /// Calls a publish method and remembers it (the latest per argument `key`) to publish again on
    /// every new leader.
    pub async fn publish(
        &self,
        spec: &'static MethodSpec,
        key: String,
        argc: u32,
        app: Bytes,
    ) -> Result<(), Error> {
        self.expect_kind(spec, &[MethodKind::Publish])?;
        self.inner
            .publishes()
            .insert((spec, key), (argc, app.clone()));
        self.call(spec, argc, app).await.map(drop)
    }

    /// Subscribes with framed arguments whose canonical JSON is `reg`.
    pub fn subscribe<T>(
        &self,
        spec: &'static MethodSpec,
        reg: String,
        app: Bytes,
    ) -> Subscription<T> {
        if let Err(err) = self.expect_kind(spec, &[MethodKind::Subscribe]) {
            return Subscription::failed(err);
        }
        let options = &self.inner.options;
        let mailbox = Arc::new(
            Mailbox::new(
                spec.name,
                options.subscription_buffer,
                options.slow_consumer,
            )
            .max_bytes(options.subscription_buffer_bytes),
        );
        let id = self.inner.next_sub.fetch_add(1, Ordering::Relaxed);
        let mut entry = SubEntry {
            spec,
            key: Arc::from(subscription_key(&reg)),
            app,
            mailbox: Arc::clone(&mailbox),
            timer: None,
        };
        entry.timer = options.subscribe_timeout.map(|timeout| {
            let mailbox = Arc::downgrade(&mailbox);
            let timer = tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(mailbox) = mailbox.upgrade() {
                    mailbox.close_if_empty(Error::SubscribeTimeout {
                        method: spec.name.to_owned(),
                        ms: timeout.as_millis() as u64,
                    });
                }
            });
            timer.abort_handle()
        });
        {
            // Under the lock that `set_state` holds while it publishes a new state and attaches
            // every registered subscription: this one is attached to each state exactly once,
            // here or there, even when an election ends meanwhile.
            let mut subs = self.inner.subs();
            let state = self.inner.state.borrow().clone();
            #[cfg(test)]
            tests::after_state_read();
            match &state {
                State::Role(role) => role.subscribe(id, &entry),
                State::Closed => mailbox.close(Some(Error::Closed)),
                // The next role attaches it.
                State::Electing | State::Unavailable(_) => {}
            }
            subs.insert(id, entry);
        }
        let inner = Arc::downgrade(&self.inner);
        Subscription::remote(mailbox, self.codec(), move || unsubscribe(&inner, id))
    }

    /// Leaves the channel. A follower closes its connection. A leader stops its channel, closes the real
    /// client, and releases the port when no channel is left; its followers elect a new leader. Calls
    /// and subscriptions of this handle then fail with [`Error::Closed`]. Closing twice is harmless;
    /// closing cannot fail.
    pub async fn close(&self) {
        self.inner.close().await;
    }
}

impl Inner {
    /// A membership that has not yet run its first election.
    fn new(options: Options, schema: &'static Schema, factory: Factory) -> Arc<Inner> {
        let channel = options.channel(schema.name).to_owned();
        Arc::new(Inner {
            options,
            schema,
            channel,
            factory,
            state: watch::Sender::new(State::Electing),
            subs: Mutex::default(),
            next_sub: AtomicU64::new(1),
            publishes: Mutex::default(),
            epoch: AtomicU64::new(0),
            roles: RoleFeed::new(),
            shutdown: CancellationToken::new(),
            supervisor: TaskTracker::new(),
        })
    }

    fn ballot(&self, first: bool) -> Ballot<'_> {
        Ballot {
            options: &self.options,
            schema: self.schema,
            channel: &self.channel,
            factory: &self.factory,
            last_epoch: self.epoch.load(Ordering::Relaxed),
            first,
        }
    }

    fn subs(&self) -> MutexGuard<'_, HashMap<u64, SubEntry>> {
        self.subs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publishes(&self) -> MutexGuard<'_, Publishes> {
        self.publishes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a new state and then its `term` (so that whoever sees the new term sees the role
    /// too), then attaches every live subscription and replays every publish there.
    fn set_state(self: &Arc<Self>, state: State, term: Option<u64>) {
        // The lock is held from the publication to the last attach, so a concurrent `subscribe`
        // either sees the old state and is attached here, or sees this one and attaches itself.
        let subs = self.subs();
        self.state.send_replace(state.clone());
        if let Some(term) = term {
            self.epoch.fetch_max(term, Ordering::Release);
        }
        if let State::Role(role) = &state {
            self.roles
                .publish(role.describe(self.epoch.load(Ordering::Acquire)));
            for (id, entry) in subs.iter() {
                role.subscribe(*id, entry);
            }
        }
        drop(subs);
        let publishes: Vec<_> = self
            .publishes()
            .iter()
            .map(|((m, _), v)| (*m, v.clone()))
            .collect();
        if publishes.is_empty() {
            return;
        }
        let handle = Handle {
            inner: Arc::clone(self),
        };
        tokio::spawn(async move {
            for (method, (argc, app)) in publishes {
                if let Err(err) = handle.call(method, argc, app).await {
                    tracing::warn!(method = method.name, error = %err, "publish replay failed");
                }
            }
        });
    }

    /// Waits until calls can go somewhere, or the deadline.
    async fn ready(
        &self,
        deadline: Instant,
        method: &str,
        timeout: Duration,
    ) -> Result<State, Error> {
        let usable = |state: &State| match state {
            State::Electing => false,
            State::Role(role) => role.is_usable(),
            State::Unavailable(_) | State::Closed => true,
        };
        // The common case, without a timer or a subscription.
        {
            let now = self.state.borrow();
            if usable(&now) {
                return Ok(now.clone());
            }
        }
        let mut rx = self.state.subscribe();
        match tokio::time::timeout_at(deadline, rx.wait_for(usable)).await {
            Ok(Ok(state)) => Ok(state.clone()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::timeout(method, timeout)),
        }
    }

    async fn close(&self) {
        self.shutdown.cancel();
        self.roles.end();
        if let State::Role(role) = self.state.send_replace(State::Closed) {
            role.leave().await;
        }
        // A real client the supervisor is stepping down from, or has just elected, closes before
        // this returns.
        self.supervisor.close();
        self.supervisor.wait().await;
        end_subscriptions(&mut self.subs());
    }
}

impl Drop for Inner {
    /// The last handle is gone without `close()`: stop everything it started.
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let State::Role(role) = self.state.send_replace(State::Closed) {
            role.leave_soon();
        }
        // A subscription can outlive its handle: it ends now, as at `close()`.
        end_subscriptions(self.subs.get_mut().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Ends every subscription of a handle that closed, with [`Error::Closed`].
fn end_subscriptions(subs: &mut HashMap<u64, SubEntry>) {
    for entry in subs.values_mut() {
        entry.mailbox.close(Some(Error::Closed));
        if let Some(timer) = entry.timer.take() {
            timer.abort();
        }
    }
}

/// Drops subscription `id` of the handle: its [`Subscription`] was dropped.
fn unsubscribe(inner: &Weak<Inner>, id: u64) {
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let Some(entry) = inner.subs().remove(&id) else {
        return;
    };
    if let State::Role(role) = &*inner.state.borrow() {
        role.unsubscribe(id, &entry);
    }
}

#[cfg(test)]
mod tests;
