//! The leader's subscriptions: one upstream subscription per (method, key), fanned out to every
//! subscriber in this process and in followers, with the latest item cached for late subscribers.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::io::writer::{self, Outbox, SendFailure};
use crate::mailbox::Mailbox;
use crate::protocol::ids::IdGen;
use crate::protocol::{ConnObject, Packet};
use crate::service::{ItemStream, MethodSpec};

/// Identifies one subscription of the leader: the method and the subscription key (`$$inner$$__` +
/// canonical JSON of the arguments, see `protocol::key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicKey {
    pub(crate) method: &'static str,
    pub(crate) key: Arc<str>,
}

/// Who receives a topic's items.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// A subscription of a handle in this process.
    Local(Arc<Mailbox>),
    /// A follower connection; a full queue closes it (`stop`).
    Remote {
        outbox: Outbox,
        stop: CancellationToken,
    },
}

struct Topic {
    spec: &'static MethodSpec,
    sinks: Vec<(Owner, Sink)>,
    latest: Option<Bytes>,
    pump: AbortHandle,
}

/// Every topic of one leader channel.
#[derive(Default)]
pub(crate) struct Topics {
    map: Mutex<HashMap<TopicKey, Topic>>,
    push_ids: IdGen,
}

/// Who a sink belongs to, for detaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// One local subscription, by its id.
    Local(u64),
    /// Every subscription of a follower connection.
    Conn(u64),
}

impl Topics {
    fn lock(&self) -> MutexGuard<'_, HashMap<TopicKey, Topic>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `owner` already has a sink on the topic.
    pub(crate) fn is_held_by(&self, key: &TopicKey, owner: Owner) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|t| t.sinks.iter().any(|(existing, _)| *existing == owner))
    }

    /// How many topics a follower connection subscribes to.
    pub(crate) fn count_for_conn(&self, conn: u64) -> usize {
        self.lock()
            .values()
            .filter(|t| t.sinks.iter().any(|(owner, _)| *owner == Owner::Conn(conn)))
            .count()
    }

    /// Adds the sink of `owner` to the topic, starting the topic with `upstream` if it does not
    /// exist yet (`upstream` is dropped otherwise). A sink already present is left alone. A late
    /// subscriber of a broadcast topic gets the latest item at once. Returns `false` when the topic
    /// does not exist and no `upstream` was given: the caller subscribes upstream and tries again.
    pub(crate) fn attach(
        self: &Arc<Self>,
        key: TopicKey,
        spec: &'static MethodSpec,
        owner: Owner,
        sink: Sink,
        upstream: Option<ItemStream>,
    ) -> bool {
        let mut map = self.lock();
        let topic = match map.get_mut(&key) {
            Some(topic) => topic,
            None => {
                let Some(upstream) = upstream else {
                    return false;
                };
                let pump =
                    tokio::spawn(Arc::clone(self).pump(key.clone(), upstream)).abort_handle();
                map.entry(key.clone()).or_insert(Topic {
                    spec,
                    sinks: Vec::new(),
                    latest: None,
                    pump,
                })
            }
        };
        if topic.sinks.iter().any(|(existing, _)| *existing == owner) {
            return true;
        }
        if let Some(latest) = topic.latest.clone() {
            self.deliver(&key, &sink, latest);
        }
        topic.sinks.push((owner, sink));
        true
    }

    /// Removes the sinks of `owner` from `key` (or from every topic for a connection), ending the
    /// upstream subscription of a topic left without subscribers.
    pub(crate) fn detach(&self, key: Option<&TopicKey>, owner: Owner) {
        let mut map = self.lock();
        map.retain(|topic_key, topic| {
            if key.is_some_and(|k| k != topic_key) {
                return true;
            }
            topic.sinks.retain(|(existing, _)| *existing != owner);
            if topic.sinks.is_empty() {
                tracing::debug!(method = topic_key.method, key = %topic_key.key, "last subscriber gone; ending the upstream subscription");
                topic.pump.abort();
                return false;
            }
            true
        });
    }

    /// Ends every topic (the leader is stopping).
    pub(crate) fn clear(&self, reason: &str) {
        let topics: Vec<_> = self.lock().drain().collect();
        for (key, topic) in topics {
            topic.pump.abort();
            self.end(&key, topic, reason);
        }
    }

    async fn pump(self: Arc<Self>, key: TopicKey, mut upstream: ItemStream) {
        while let Some(item) = upstream.next().await {
            self.publish(&key, item);
        }
        let topic = self.lock().remove(&key);
        if let Some(topic) = topic {
            self.end(&key, topic, "the real client ended the subscription");
        }
    }

    /// Fans one item out: to every sink of a broadcast topic (and caches it), or to one at random.
    fn publish(&self, key: &TopicKey, item: Bytes) {
        let mut map = self.lock();
        let Some(topic) = map.get_mut(key) else {
            return;
        };
        if topic.spec.broadcast {
            topic.latest = Some(item.clone());
            let frame = self.push_frame(key, item.clone(), None);
            for (_, sink) in &topic.sinks {
                self.deliver_frame(sink, &item, frame.as_ref());
            }
        } else if !topic.sinks.is_empty() {
            let pick = RandomState::new().hash_one(topic.sinks.len()) as usize % topic.sinks.len();
            let (_, sink) = &topic.sinks[pick];
            self.deliver(key, sink, item);
        }
    }

    fn deliver(&self, key: &TopicKey, sink: &Sink, item: Bytes) {
        let frame = match sink {
            Sink::Remote { .. } => self.push_frame(key, item.clone(), None),
            Sink::Local(_) => None,
        };
        self.deliver_frame(sink, &item, frame.as_ref());
    }

    fn deliver_frame(&self, sink: &Sink, item: &Bytes, frame: Option<&Bytes>) {
        match sink {
            Sink::Local(mailbox) => mailbox.deliver(item.clone()),
            Sink::Remote { outbox, stop } => {
                let Some(frame) = frame else { return };
                if outbox.try_send(frame) == Err(SendFailure::Full) {
                    tracing::warn!(
                        "follower is not reading its subscription pushes; closing its connection"
                    );
                    stop.cancel();
                }
            }
        }
    }

    /// The `subscribe_result` request carrying `item`, encoded once for every follower.
    fn push_frame(&self, key: &TopicKey, item: Bytes, end: Option<&str>) -> Option<Bytes> {
        let conn = ConnObject::SubscribeResult {
            key: key.key.to_string(),
            method: Some(key.method.to_owned()),
            end: end.map(str::to_owned),
        };
        match writer::encode(&Packet::request(self.push_ids.next(), 0, conn, item)) {
            Ok(frame) => Some(frame),
            Err(err) => {
                tracing::warn!(error = %err, "subscription push could not be encoded");
                None
            }
        }
    }

    fn end(&self, key: &TopicKey, topic: Topic, reason: &str) {
        let frame = self.push_frame(key, Bytes::copy_from_slice(reason.as_bytes()), Some(reason));
        for (_, sink) in topic.sinks {
            match sink {
                Sink::Local(mailbox) => mailbox.close(Some(Error::SubscriptionEnded {
                    method: key.method.to_owned(),
                    reason: reason.to_owned(),
                })),
                Sink::Remote { outbox, .. } => {
                    if let Some(frame) = &frame {
                        let _ = outbox.try_send(frame);
                    }
                }
            }
        }
    }
}
