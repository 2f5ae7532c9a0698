//! The channel's subscriptions, of this process and of followers: each is a sink on a topic of
//! [`Topics`](super::topics::Topics), and the first sink of a topic subscribes the real client.

use std::sync::Arc;

use bytes::Bytes;

use super::LeaderChannel;
use super::connection::Conn;
use super::topics::{Owner, Sink, TopicKey};
use crate::error::Error;
use crate::io::writer;
use crate::mailbox::Mailbox;
use crate::protocol::conn::SubscribeResult;
use crate::protocol::{ConnObject, Packet};
use crate::service::{MethodKind, MethodSpec, ServiceError};

impl LeaderChannel {
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
                name: err.fault(),
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

    /// A follower's `subscribe`: its connection becomes a sink of the topic, within its cap; a
    /// refusal ends the subscription at once with a `subscribe_result` carrying the reason.
    pub(super) fn subscribe_remote(
        self: &Arc<Self>,
        conn: &Conn,
        key: String,
        method: Option<&str>,
        app: Bytes,
    ) {
        let method = method.unwrap_or("subscribe");
        let limit = self.options.max_subscriptions_per_follower;
        let result = self
            .spec_for(method, &[MethodKind::Subscribe])
            .and_then(|spec| {
                let topic = TopicKey {
                    method: spec.name,
                    key: Arc::from(key.as_str()),
                };
                // The cap counts this follower's subscriptions, whoever else holds the topic.
                let owner = Owner::Conn(conn.id);
                if !self.topics.is_held_by(&topic, owner)
                    && self.topics.count_for_conn(conn.id) >= limit
                {
                    return Err(ServiceError::TooManySubscriptions { limit });
                }
                let sink = Sink::Remote {
                    outbox: conn.outbox.clone(),
                    stop: conn.stop.clone(),
                };
                self.attach(topic, spec, Owner::Conn(conn.id), sink, &app)
            });
        if let Err(err) = result {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(channel = %self.name, method, error = %err, left_out, "subscription refused");
            }
            let end = ConnObject::SubscribeResult(SubscribeResult {
                key,
                method: Some(method.to_owned()),
                end: Some(err.to_string()),
            });
            let _ = writer::encode(&Packet::request(0, 0, end, Bytes::from(err.to_string())))
                .map(|frame| conn.outbox.try_send(&frame));
        }
    }

    /// A follower's `unsubscribe`: its connection stops being a sink of the topic.
    pub(super) fn unsubscribe_remote(&self, conn: &Conn, key: String, method: Option<&str>) {
        if let Ok(spec) = self.spec_for(method.unwrap_or("subscribe"), &[MethodKind::Subscribe]) {
            let key = TopicKey {
                method: spec.name,
                key: key.into(),
            };
            self.topics.detach(Some(&key), Owner::Conn(conn.id));
        }
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
}
