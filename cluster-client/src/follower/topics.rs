//! The subscriptions of this process on the leader: one topic per (method, key), asked of the
//! leader once, whatever the number of subscribers here; item pushes are matched by their text.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use bytes::Bytes;

use super::{FollowerConn, millis};
use crate::error::{Encoded, Error};
use crate::io::writer;
use crate::mailbox::Mailbox;
use crate::protocol::conn::{Subscribe, SubscribeResultRes, UnSubscribe};
use crate::protocol::{ConnObject, Frame, Packet, RawJson, key_args, push_text};
use crate::service::MethodSpec;

/// The subscriptions of this process to one (method, key) on this connection.
pub(super) struct Topic {
    method: &'static str,
    key: Arc<str>,
    /// Every subscriber gets every item (not one subscriber of the cluster each).
    broadcast: bool,
    sinks: Vec<(u64, Arc<Mailbox>)>,
    latest: Option<Bytes>,
    /// Whether the leader said the topic is live upstream.
    live: bool,
    /// The id of the `subscribe` request that opened the topic: the leader's notice that it is
    /// live, and its end, name it. One naming another is of a topic of the same key that this
    /// process has dropped since, and is ignored.
    request: i64,
}

impl Topic {
    /// Whether a notice naming `request` is about this topic (a leader that names none is taken
    /// at its word).
    fn answers(&self, request: Option<i64>) -> bool {
        request.is_none_or(|request| request == self.request)
    }

    /// Keeps `item` for late subscribers and hands it to every subscriber.
    fn deliver(&mut self, item: Bytes) {
        for (_, mailbox) in &self.sinks {
            mailbox.deliver(item.clone());
        }
        self.latest = Some(item);
    }
}

/// A topic's method and key.
pub(crate) type TopicId = (&'static str, Arc<str>);

/// Topics by the connection object of their item pushes ([`push_text`]), so that a push is matched
/// by its text, without parsing it.
pub(super) type Topics = HashMap<Box<[u8]>, Topic>;

impl FollowerConn {
    fn topics(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscription of this process; the leader is asked once per (method, key), and a late
    /// subscriber gets the latest item this connection saw.
    pub(crate) fn subscribe(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: &Bytes,
        sub_id: u64,
        mailbox: &Arc<Mailbox>,
    ) {
        let mut topics = self.topics();
        let topic = topics
            .entry(push_text(key, spec.name))
            .or_insert_with(|| Topic {
                method: spec.name,
                key: Arc::clone(key),
                broadcast: spec.broadcast,
                sinks: Vec::new(),
                latest: None,
                live: false,
                request: self.ids.next(),
            });
        if topic.sinks.iter().any(|(id, _)| *id == sub_id) {
            return;
        }
        let first = topic.sinks.is_empty();
        let request = topic.request;
        topic.sinks.push((sub_id, Arc::clone(mailbox)));
        if topic.live {
            mailbox.set_live();
        }
        if let Some(latest) = &topic.latest {
            mailbox.deliver(latest.clone());
        }
        drop(topics);
        if first {
            self.send_subscription(spec, key, app.clone(), Some(request));
            // A leader of the Node package does not say when a topic is live: the request is
            // the best that is known.
            if self.leader_is_node() {
                self.on_ready(key, spec.name, Some(request));
            }
        }
    }

    /// The leader says the topic (method, key) opened by `request` is live upstream.
    pub(super) fn on_ready(&self, key: &str, method: &str, request: Option<i64>) {
        let mut topics = self.topics();
        let topic = topics.get_mut(&push_text(key, method));
        if let Some(topic) = topic.filter(|topic| topic.answers(request)) {
            topic.live = true;
            for (_, mailbox) in &topic.sinks {
                mailbox.set_live();
            }
        }
    }

    /// Whether the leader has served every broadcast subscription of this connection at least one
    /// item (one that gets no item, such as a work queue's, cannot tell).
    pub(crate) fn subscriptions_served(&self) -> bool {
        self.topics()
            .values()
            .all(|topic| !topic.broadcast || topic.latest.is_some())
    }

    /// The latest item of every broadcast topic, by (method, key): `None` for a topic without one.
    pub(crate) fn latest_items(&self) -> Vec<(TopicId, Option<Bytes>)> {
        self.topics()
            .values()
            .filter(|topic| topic.broadcast)
            .map(|topic| ((topic.method, Arc::clone(&topic.key)), topic.latest.clone()))
            .collect()
    }

    /// The latest item of the topic (method, key), if this connection has one.
    pub(crate) fn latest_item(&self, method: &str, key: &str) -> Option<Bytes> {
        self.topics()
            .get(&push_text(key, method))
            .and_then(|topic| topic.latest.clone())
    }

    /// Drops a subscription of this process; the leader is told when it was the last for its key.
    pub(crate) fn unsubscribe(&self, spec: &'static MethodSpec, key: &Arc<str>, sub_id: u64) {
        let mut topics = self.topics();
        let topic_key = push_text(key, spec.name);
        let Some(topic) = topics.get_mut(&topic_key) else {
            return;
        };
        topic.sinks.retain(|(id, _)| *id != sub_id);
        if topic.sinks.is_empty() {
            topics.remove(&topic_key);
            drop(topics);
            self.send_subscription(spec, key, Bytes::new(), None);
        }
    }

    /// Asks the leader to start the topic (`subscribe`, as request `Some(id)`) or to end it
    /// (`None`); a connection too backed up to take the request is closed, so that a new one
    /// subscribes again.
    fn send_subscription(
        &self,
        spec: &'static MethodSpec,
        key: &Arc<str>,
        app: Bytes,
        subscribe: Option<i64>,
    ) {
        let reg = key_args(key);
        let reg = match RawJson::new(reg.to_owned()) {
            Ok(reg) => reg,
            Err(err) => {
                tracing::warn!(method = spec.name, error = %err, "subscription key is not JSON");
                return;
            }
        };
        let (key, method) = (key.to_string(), Some(spec.name.to_owned()));
        let (id, conn) = match subscribe {
            Some(id) => (id, ConnObject::Subscribe(Subscribe { key, reg, method })),
            None => (
                self.ids.next(),
                ConnObject::UnSubscribe(UnSubscribe { key, reg, method }),
            ),
        };
        let timeout = millis(self.options.response_timeout);
        match writer::encode(&Packet::request(id, timeout, conn, app)) {
            Ok(frame) => {
                if self.outbox.try_send(&frame).is_err() {
                    tracing::warn!(
                        method = spec.name,
                        "leader connection is backed up; closing it to resubscribe"
                    );
                    self.mark_lost();
                }
            }
            Err(err) => {
                tracing::warn!(method = spec.name, error = %err, "subscription request could not be encoded")
            }
        }
    }

    /// Delivers an item push known by its text (the connection object of a topic of this connection)
    /// without parsing it; `false` if the frame is not one.
    pub(super) fn deliver_known_push(&self, frame: &Frame) -> bool {
        let mut topics = self.topics();
        if let Some(topic) = topics.get_mut(frame.conn_text()) {
            topic.deliver(frame.app());
            drop(topics);
            self.ack_push(frame.header.id);
            return true;
        }
        false
    }

    /// Acknowledges a push, to a leader that asked for acknowledgements at registration.
    pub(super) fn ack_push(&self, id: i64) {
        if self.push_ack {
            let ack = Packet::response(
                id,
                0,
                ConnObject::SubscribeResultRes(SubscribeResultRes {}),
                Bytes::new(),
            );
            if let Ok(frame) = writer::encode(&ack) {
                let _ = self.outbox.try_send(&frame);
            }
        }
    }

    /// A push whose text was not a topic's: an item written another way, or the end of a topic
    /// (`end`: its reason, whether the item is the real client's own error, and the request that
    /// opened the topic, if the leader names it).
    pub(super) fn on_push(
        &self,
        key: &str,
        method: Option<&str>,
        end: Option<(String, bool, Option<i64>)>,
        item: Bytes,
    ) {
        let mut topics = self.topics();
        let topic_key = match method {
            Some(method) => push_text(key, method),
            // The Node package's leader names no method: the topic of this key, whichever
            // subscribe method it is of.
            None => {
                let mut methods: Vec<&'static str> = topics.values().map(|t| t.method).collect();
                methods.sort_unstable();
                methods.dedup();
                methods
                    .into_iter()
                    .map(|method| push_text(key, method))
                    .find(|candidate| topics.contains_key(candidate))
                    .unwrap_or_else(|| push_text(key, "subscribe"))
            }
        };
        let Some(topic) = topics.get_mut(&topic_key) else {
            return;
        };
        match end {
            None => topic.deliver(item),
            // The end of a topic of the same key that this process has dropped since.
            Some((_, _, request)) if !topic.answers(request) => {}
            Some((reason, typed, _)) => {
                let error = if typed {
                    Error::Upstream {
                        message: reason,
                        value: Encoded::new(self.options.codec, item),
                    }
                } else {
                    Error::SubscriptionEnded {
                        method: topic.method.to_owned(),
                        reason,
                    }
                };
                for (_, mailbox) in &topic.sinks {
                    mailbox.close(Some(error.clone()));
                }
                topics.remove(&topic_key);
            }
        }
    }
}
