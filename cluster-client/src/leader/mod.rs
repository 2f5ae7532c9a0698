//! The leader of one channel: owns the real client, runs calls from its own process and from
//! followers, and fans subscriptions out.

mod connection;
mod topics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::mailbox::Mailbox;
use crate::options::Options;
use crate::protocol::args::Args;
use crate::service::{MethodKind, MethodSpec, Reply, Schema, Service, ServiceError};

pub(crate) use connection::Registration;
use topics::{Owner, Sink, TopicKey, Topics};

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
    /// The port server routing followers here; `None` in single mode.
    server: std::sync::OnceLock<Arc<crate::server::PortServer>>,
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
            server: std::sync::OnceLock::new(),
        })
    }

    /// Records the port server that routes followers to this channel.
    pub(crate) fn attach_server(&self, server: Arc<crate::server::PortServer>) {
        let _ = self.server.set(server);
    }

    /// The leadership term.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Runs an invoke, oneway or publish call of this process on the real client, cancelled at its
    /// deadline.
    pub(crate) async fn call_local(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        deadline: Duration,
    ) -> Result<Reply, Error> {
        let args = Args::new(app, argc);
        let call = run_guarded(
            Arc::clone(&self.service),
            spec.name,
            args,
            self.options.codec,
        );
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result.map_err(|e| Error::Remote {
                name: e.fault().to_owned(),
                message: e.to_string(),
            }),
            Err(_) => Err(Error::Timeout {
                method: spec.name.to_owned(),
                ms: deadline.as_millis() as u64,
            }),
        }
    }

    /// Subscribes a mailbox of this process to `(spec, key)`.
    pub(crate) fn subscribe_local(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: &Bytes,
        sub_id: u64,
        mailbox: &Arc<Mailbox>,
    ) {
        let key = TopicKey {
            method: spec.name,
            key: Arc::clone(key),
        };
        if let Err(err) = self.attach(
            key,
            spec,
            Owner::Local(sub_id),
            Sink::Local(Arc::clone(mailbox)),
            app,
        ) {
            mailbox.close(Some(Error::Remote {
                name: err.fault().to_owned(),
                message: err.to_string(),
            }));
        }
    }

    /// Drops a subscription of this process.
    pub(crate) fn unsubscribe_local(&self, spec: &'static MethodSpec, key: &Arc<str>, sub_id: u64) {
        let key = TopicKey {
            method: spec.name,
            key: Arc::clone(key),
        };
        self.topics.detach(Some(&key), Owner::Local(sub_id));
    }

    /// Adds a sink to a topic, subscribing the real client first when the topic is new.
    fn attach(
        &self,
        key: TopicKey,
        spec: &'static MethodSpec,
        owner: Owner,
        sink: Sink,
        app: &Bytes,
    ) -> Result<(), ServiceError> {
        if self
            .topics
            .attach(key.clone(), spec, owner, sink.clone(), None)
        {
            return Ok(());
        }
        let upstream =
            Arc::clone(&self.service).subscribe(self.options.codec, spec.name, app.clone())?;
        tracing::debug!(channel = %self.name, method = spec.name, key = %key.key, "subscribing the real client");
        self.topics.attach(key, spec, owner, sink, Some(upstream));
        Ok(())
    }

    /// Stops the term: ends every follower connection and subscription, then closes the real client.
    pub(crate) async fn stop(&self) {
        if let Some(server) = self.server.get() {
            crate::election::release(server, &self.name);
        }
        self.stop.cancel();
        self.topics.clear("the leader closed");
        self.tasks.close();
        self.tasks.wait().await;
        Arc::clone(&self.service).close().await;
    }

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

/// Runs a call on the real client, turning a panic into a fault instead of losing the answer.
async fn run_guarded(
    service: Arc<dyn Service>,
    method: &'static str,
    args: Args,
    codec: crate::transcode::Codec,
) -> Result<Reply, ServiceError> {
    let call = std::panic::AssertUnwindSafe(async move { service.call(codec, method, args).await });
    match call.catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(method, "the real client panicked");
            Err(ServiceError::Panicked { method })
        }
    }
}
