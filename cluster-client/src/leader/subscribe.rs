//! The channel's subscriptions, of this process and of followers: each is a sink on a topic of
//! [`Topics`](super::topics::Topics), and the first sink of a topic subscribes the real client.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::LeaderChannel;
use super::connection::Conn;
use super::topics::{Owner, Sink, TopicKey};
use crate::error::Error;
use crate::io::writer;
use crate::mailbox::Mailbox;
use crate::protocol::args::push_arg_with;
use crate::protocol::conn::SubscribeResult;
use crate::protocol::{ConnObject, Packet, RawJson};
use crate::service::{MethodKind, MethodSpec, Prepared, ServiceError};
use crate::transcode::Transcode;

impl LeaderChannel {
    /// Subscribes a mailbox of this process to `(spec, key)`: the key its own handle derived from
    /// the same arguments, and unsubscribes with.
    pub(crate) fn subscribe_local(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: &Bytes,
        sub_id: u64,
        mailbox: &Arc<Mailbox>,
    ) {
        // Its arguments are decoded only if the topic is new: the key is this process's own.
        let sink = Sink::Local(Arc::clone(mailbox));
        let attached = self.attach(spec, Arc::clone(key), Owner::Local(sub_id), sink, || {
            self.prepare(spec, app)
        });
        if let Err(err) = attached {
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

    /// A follower's `subscribe`: its connection becomes a sink of the topic its arguments give,
    /// within its cap. The key it sent is only a label: one that is not its arguments' is refused.
    /// A refusal ends the subscription at once with a `subscribe_result` carrying the reason.
    /// `request` is the id of the follower's `subscribe`, which the topic's notices to it carry.
    pub(super) fn subscribe_remote(
        self: &Arc<Self>,
        conn: &Conn,
        request: i64,
        key: String,
        method: Option<&str>,
        app: Bytes,
        reg: &RawJson,
    ) {
        // A follower of this crate names the method, and is told when the topic is live.
        let announce = method.is_some();
        let method = method.unwrap_or_else(|| self.node_subscribe());
        // A follower of the Node package sends its argument only as `reg`, JSON in the connection
        // object: it becomes the one framed argument this crate's followers send.
        let app = if app.is_empty() {
            self.argument_of(reg)
        } else {
            app
        };
        let limit = self.options.max_subscriptions_per_follower;
        let max_key_len = self.options.max_key_len;
        let result = self
            .spec_for(method, &[MethodKind::Subscribe])
            .and_then(|spec| match key.len() {
                len if len > max_key_len => Err(ServiceError::KeyTooLong {
                    method: spec.name,
                    len,
                    limit: max_key_len,
                }),
                _ => Ok((spec, self.prepare(spec, &app)?)),
            })
            .and_then(|(spec, prepared)| {
                if prepared.key != key {
                    return Err(ServiceError::KeyMismatch {
                        method: spec.name,
                        sent: key.chars().take(64).collect(),
                        derived: prepared.key.chars().take(64).collect(),
                    });
                }
                let key: Arc<str> = Arc::from(key.as_str());
                let topic = TopicKey {
                    method: spec.name,
                    key: Arc::clone(&key),
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
                    request: announce.then_some(request),
                };
                self.attach(spec, key, owner, sink, || Ok(prepared))
            });
        if let Err(err) = result {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(channel = %self.name, method, error = %err, left_out, "subscription refused");
            }
            let end = ConnObject::SubscribeResult(SubscribeResult {
                key,
                method: Some(method.to_owned()),
                end: Some(err.to_string()),
                typed: false,
                request: announce.then_some(request),
            });
            let _ = writer::encode(&Packet::request(0, 0, end, Bytes::from(err.to_string())))
                .map(|frame| conn.outbox.try_send(&frame));
        }
    }

    /// A follower's `unsubscribe`: its connection stops being a sink of the topic.
    pub(super) fn unsubscribe_remote(&self, conn: &Conn, key: String, method: Option<&str>) {
        let method = method.unwrap_or_else(|| self.node_subscribe());
        if let Ok(spec) = self.spec_for(method, &[MethodKind::Subscribe]) {
            let key = TopicKey {
                method: spec.name,
                key: key.into(),
            };
            self.topics.detach(Some(&key), Owner::Conn(conn.id));
        }
    }

    /// Decodes a subscription's arguments into its key and its upstream subscription.
    /// The subscribe method of a subscription that names none (the Node package's followers have
    /// one subscribe method): the one named `subscribe`, else the schema's first.
    fn node_subscribe(&self) -> &'static str {
        let subscribes = || {
            self.schema
                .methods
                .iter()
                .filter(|spec| spec.kind == MethodKind::Subscribe)
        };
        subscribes()
            .find(|spec| spec.name == "subscribe")
            .or_else(|| subscribes().next())
            .map_or("subscribe", |spec| spec.name)
    }

    /// The application object of one argument, `reg` in the channel's codec; none for a `null`
    /// `reg` (a method without arguments) or one that the codec cannot encode (the call then
    /// fails as arguments that do not decode).
    fn argument_of(&self, reg: &RawJson) -> Bytes {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(reg.get()) else {
            return Bytes::new();
        };
        if value.is_null() {
            return Bytes::new();
        }
        let mut app = BytesMut::new();
        match push_arg_with(&mut app, |out| self.options.codec.encode(&value, out)) {
            Ok(()) => app.freeze(),
            Err(_) => Bytes::new(),
        }
    }

    fn prepare(&self, spec: &'static MethodSpec, app: &Bytes) -> Result<Prepared, ServiceError> {
        Arc::clone(&self.service).subscribe(self.options.codec, spec.name, app.clone())
    }

    /// Adds a sink to the topic `(spec, key)`; when the topic is new, first subscribes the real
    /// client with what `prepare` gives.
    fn attach(
        &self,
        spec: &'static MethodSpec,
        key: Arc<str>,
        owner: Owner,
        sink: Sink,
        prepare: impl FnOnce() -> Result<Prepared, ServiceError>,
    ) -> Result<(), ServiceError> {
        let key = TopicKey {
            method: spec.name,
            key,
        };
        if self
            .topics
            .attach(key.clone(), spec, owner, sink.clone(), None)
        {
            return Ok(());
        }
        let limit = self.options.max_topics;
        if self.topics.len() >= limit {
            return Err(ServiceError::TooManyTopics { limit });
        }
        let prepared = prepare()?;
        tracing::debug!(channel = %self.name, method = spec.name, key = %key.key, "subscribing the real client");
        self.topics
            .attach(key, spec, owner, sink, Some(prepared.start));
        Ok(())
    }
}
