//! The leader's subscriptions: one upstream subscription per (method, key), fanned out to every
//! subscriber in this process and in followers, with the latest item cached for late subscribers.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::AbortHandle;

use crate::error::Error;
use crate::io::writer::{self, Outbox, SendFailure};
use crate::mailbox::Mailbox;
use crate::protocol::conn::{SubscribeReady, SubscribeResult};
use crate::protocol::ids::IdGen;
use crate::protocol::{ConnObject, Packet};
use crate::service::{MethodSpec, Start};
use crate::stats::TopicStats;
use crate::transcode::Codec;

/// Identifies one subscription of the leader: the method and the subscription key (`$$inner$$__` +
/// canonical JSON of the arguments, see `protocol::key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicKey {
    pub(crate) method: &'static str,
    pub(crate) key: Arc<str>,
}

/// The topics a stats snapshot lists, at most: 256 keys of up to `max_key_len` (4 KiB) fit a
/// frame, whatever followers subscribe to.
pub(crate) const MAX_TOPICS_LISTED: usize = 256;

/// Who receives a topic's items.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// A subscription of a handle in this process.
    Local(Arc<Mailbox>),
    /// A follower connection; a full queue stops it ([`Outbox::stop`]).
    Remote {
        /// The connection's sending side.
        outbox: Outbox,
        /// The id of the `subscribe` request of a follower of this crate. It is told when the
        /// topic is live and when it ends, and both notices carry this id, so that it can tell
        /// them from those of a subscription to the same key it has dropped since. `None` for a
        /// follower of the Node package, which is told neither: it would take them for items.
        request: Option<i64>,
    },
}

struct Topic {
    spec: &'static MethodSpec,
    sinks: Vec<(Owner, Sink)>,
    latest: Option<Bytes>,
    /// Whether the real client's subscribe has returned.
    live: bool,
    pump: AbortHandle,
}

/// Every topic of one leader channel.
pub(crate) struct Topics {
    map: Mutex<Map>,
    push_ids: IdGen,
    /// The channel's codec, in which a real client's own error is sent.
    codec: Codec,
    /// The first and the longest pause between upstream resubscriptions.
    backoff: (Duration, Duration),
}

/// The topics, and which ones each owner has a sink on: every question about one owner or one topic
/// is answered without going through the other topics.
#[derive(Default)]
struct Map {
    topics: HashMap<TopicKey, Topic>,
    by_owner: HashMap<Owner, HashSet<TopicKey>>,
}

impl Map {
    /// Removes `owner`'s sink from the topic `key` (its index entry is the caller's), ending the
    /// topic when it was the last.
    fn remove_sink(&mut self, key: &TopicKey, owner: Owner) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        topic.sinks.retain(|(existing, _)| *existing != owner);
        if topic.sinks.is_empty() {
            tracing::debug!(method = key.method, key = %key.key, "last subscriber gone; ending the upstream subscription");
            topic.pump.abort();
            self.topics.remove(key);
        }
    }

    /// Removes the topic `key` and its entries in the owners' index.
    fn remove_topic(&mut self, key: &TopicKey) -> Option<Topic> {
        let topic = self.topics.remove(key)?;
        for (owner, _) in &topic.sinks {
            if let Some(keys) = self.by_owner.get_mut(owner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_owner.remove(owner);
                }
            }
        }
        Some(topic)
    }
}

/// Who a sink belongs to, for detaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// One local subscription, by its id.
    Local(u64),
    /// Every subscription of a follower connection.
    Conn(u64),
}

impl Topics {
    /// No topics yet, for a channel in `codec` that resubscribes after pauses from `backoff.0` up
    /// to `backoff.1`.
    pub(crate) fn new(codec: Codec, backoff: (Duration, Duration)) -> Self {
        Topics {
            map: Mutex::default(),
            push_ids: IdGen::default(),
            codec,
            backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `owner` already has a sink on the topic.
    pub(crate) fn is_held_by(&self, key: &TopicKey, owner: Owner) -> bool {
        self.lock()
            .by_owner
            .get(&owner)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Whether every broadcast topic has had an item (one that gets no item, such as a work
    /// queue's, cannot tell).
    pub(crate) fn all_served(&self) -> bool {
        self.lock()
            .topics
            .values()
            .all(|topic| !topic.spec.broadcast || topic.latest.is_some())
    }

    /// The first [`MAX_TOPICS_LISTED`] topics by method and key, with their subscribers, and the
    /// count of all of them.
    pub(crate) fn snapshot(&self) -> (Vec<TopicStats>, usize) {
        let map = self.lock();
        let mut all: Vec<(&TopicKey, usize)> = map
            .topics
            .iter()
            .map(|(key, topic)| (key, topic.sinks.len()))
            .collect();
        all.sort_unstable_by(|(a, _), (b, _)| (a.method, &a.key).cmp(&(b.method, &b.key)));
        let listed = all
            .iter()
            .take(MAX_TOPICS_LISTED)
            .map(|(key, subscribers)| TopicStats {
                method: key.method.to_owned(),
                key: key.key.to_string(),
                subscribers: *subscribers,
            })
            .collect();
        (listed, all.len())
    }

    /// The latest item of the topic (method, key), if it has one.
    pub(crate) fn latest_item(&self, key: &TopicKey) -> Option<Bytes> {
        self.lock()
            .topics
            .get(key)
            .and_then(|topic| topic.latest.clone())
    }

    /// How many topics run.
    pub(crate) fn len(&self) -> usize {
        self.lock().topics.len()
    }

    /// How many topics a follower connection subscribes to.
    pub(crate) fn count_for_conn(&self, conn: u64) -> usize {
        self.lock()
            .by_owner
            .get(&Owner::Conn(conn))
            .map_or(0, HashSet::len)
    }

    /// Adds the sink of `owner` to the topic, starting the topic with `upstream` if it does not
    /// exist yet (`upstream` is unused otherwise). A sink already present is left alone. A late
    /// subscriber is told at once that the topic is live, if it is, and of a broadcast topic gets
    /// the latest item. Returns `false` when the topic does not exist and no `upstream` was given:
    /// the caller prepares the upstream subscription and tries again.
    pub(crate) fn attach(
        self: &Arc<Self>,
        key: TopicKey,
        spec: &'static MethodSpec,
        owner: Owner,
        sink: Sink,
        upstream: Option<Start>,
    ) -> bool {
        let mut guard = self.lock();
        let map = &mut *guard;
        let topic = match map.topics.get_mut(&key) {
            Some(topic) => topic,
            None => {
                let Some(upstream) = upstream else {
                    return false;
                };
                let pump =
                    tokio::spawn(Arc::clone(self).pump(key.clone(), spec, upstream)).abort_handle();
                map.topics.entry(key.clone()).or_insert(Topic {
                    spec,
                    sinks: Vec::new(),
                    latest: None,
                    live: false,
                    pump,
                })
            }
        };
        if !map.by_owner.entry(owner).or_default().insert(key.clone()) {
            return true;
        }
        if topic.live {
            self.announce(&key, &sink);
        }
        if let Some(latest) = topic.latest.clone() {
            self.deliver(&key, &sink, latest);
        }
        topic.sinks.push((owner, sink));
        true
    }

    /// Removes the sinks of `owner` from `key` (or from every topic for a connection), ending the
    /// upstream subscription of a topic left without subscribers.
    ///
    /// The cost is that of the owner's own topics, whatever the number of topics.
    pub(crate) fn detach(&self, key: Option<&TopicKey>, owner: Owner) {
        let mut map = self.lock();
        match key {
            Some(key) => {
                let Some(keys) = map.by_owner.get_mut(&owner) else {
                    return;
                };
                if !keys.remove(key) {
                    return;
                }
                if keys.is_empty() {
                    map.by_owner.remove(&owner);
                }
                map.remove_sink(key, owner);
            }
            None => {
                for key in map.by_owner.remove(&owner).unwrap_or_default() {
                    map.remove_sink(&key, owner);
                }
            }
        }
    }

    /// Ends every topic: the leader is stopping. Nobody is told: the followers move to a
    /// successor and subscribe there, and this process's own subscriptions are attached to its
    /// handle's next role (after a resignation) or closed with it.
    pub(crate) fn clear(&self) {
        let topics: Vec<_> = {
            let mut map = self.lock();
            map.by_owner.clear();
            map.topics.drain().collect()
        };
        for (_, topic) in topics {
            topic.pump.abort();
        }
    }

    /// Subscribes the real client and fans its items out until its stream ends; when it fails,
    /// ends the topic with the error, or, for a `resubscribe` method whose subscription was live,
    /// subscribes again after a pause that grows with each failure in a row (an item resets it).
    async fn pump(self: Arc<Self>, key: TopicKey, spec: &'static MethodSpec, start: Start) {
        let mut failures = 0u32;
        let mut was_live = false;
        let ended = loop {
            let failure = match start().await {
                Ok(mut items) => {
                    self.went_live(&key);
                    was_live = true;
                    loop {
                        match items.next().await {
                            Some(Ok(item)) => {
                                failures = 0;
                                self.publish(&key, item);
                            }
                            Some(Err(error)) => break Some(error),
                            None => break None,
                        }
                    }
                }
                Err(error) => Some(error),
            };
            match failure {
                Some(error) if spec.resubscribe && was_live => {
                    let pause = crate::backoff::pause(self.backoff.0, self.backoff.1, failures);
                    if failures == 0 {
                        tracing::warn!(method = key.method, key = %key.key, %error, ?pause, "the real client's subscription failed; subscribing again");
                    } else {
                        tracing::debug!(method = key.method, key = %key.key, %error, failures, ?pause, "the real client's subscription failed again");
                    }
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(pause).await;
                }
                Some(error) => break error,
                None => {
                    break Error::SubscriptionEnded {
                        method: key.method.to_owned(),
                        reason: "the real client ended the subscription".to_owned(),
                    };
                }
            }
        };
        let topic = self.lock().remove_topic(&key);
        if let Some(topic) = topic {
            self.end(&key, topic, &ended);
        }
    }

    /// The real client's subscribe returned: every subscriber is told the topic is live.
    fn went_live(&self, key: &TopicKey) {
        let mut map = self.lock();
        let Some(topic) = map.topics.get_mut(key) else {
            return;
        };
        if std::mem::replace(&mut topic.live, true) {
            return;
        }
        for (_, sink) in &topic.sinks {
            self.announce(key, sink);
        }
    }

    /// Tells one subscriber the topic is live: a mailbox of this process at once, a follower of
    /// this crate with a `subscribe_ready` naming its request (one of the Node package's is not
    /// told: it would take the notice for an item).
    fn announce(&self, key: &TopicKey, sink: &Sink) {
        match sink {
            Sink::Local(mailbox) => mailbox.set_live(),
            Sink::Remote {
                outbox,
                request: Some(request),
            } => {
                if let Some(notice) = self.ready_frame(key, *request) {
                    send_or_stop(outbox, &notice);
                }
            }
            Sink::Remote { request: None, .. } => {}
        }
    }

    /// The `subscribe_ready` request of the topic, for the follower whose subscribe was `request`.
    fn ready_frame(&self, key: &TopicKey, request: i64) -> Option<Bytes> {
        let ready = ConnObject::SubscribeReady(SubscribeReady {
            key: key.key.to_string(),
            method: key.method.to_owned(),
            request: Some(request),
        });
        writer::encode(&Packet::request(
            self.push_ids.next(),
            0,
            ready,
            Bytes::new(),
        ))
        .inspect_err(|err| tracing::warn!(error = %err, "subscription notice could not be encoded"))
        .ok()
    }

    /// Fans one item out: to every sink of a broadcast topic (and caches it), or to one at random.
    fn publish(&self, key: &TopicKey, item: Bytes) {
        let mut map = self.lock();
        let Some(topic) = map.topics.get_mut(key) else {
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
            Sink::Remote { outbox, .. } => {
                if let Some(frame) = frame {
                    send_or_stop(outbox, frame);
                }
            }
        }
    }

    /// The `subscribe_result` request carrying `item`, encoded once for every follower; with
    /// `end` (reason, typed, request), the topic's last for the follower whose subscribe was
    /// `request`, whose item is the real client's own error when `typed`.
    fn push_frame(
        &self,
        key: &TopicKey,
        item: Bytes,
        end: Option<(&str, bool, i64)>,
    ) -> Option<Bytes> {
        let conn = ConnObject::SubscribeResult(SubscribeResult {
            key: key.key.to_string(),
            method: Some(key.method.to_owned()),
            end: end.map(|(reason, _, _)| reason.to_owned()),
            typed: end.is_some_and(|(_, typed, _)| typed),
            request: end.map(|(_, _, request)| request),
        });
        match writer::encode(&Packet::request(self.push_ids.next(), 0, conn, item)) {
            Ok(frame) => Some(frame),
            Err(err) => {
                tracing::warn!(error = %err, "subscription push could not be encoded");
                None
            }
        }
    }

    /// Ends the topic for every subscriber with `error`: a follower of this crate reads the reason
    /// as text, or the real client's own error in the channel's codec; one of the Node package's
    /// is not told.
    fn end(&self, key: &TopicKey, topic: Topic, error: &Error) {
        let text = |reason: &str| (Bytes::copy_from_slice(reason.as_bytes()), false);
        let (reason, (item, typed)) = match error {
            Error::Upstream { message, value } => (
                message.clone(),
                match value.encode(self.codec) {
                    Ok(value) => (value, true),
                    Err(err) => {
                        tracing::warn!(method = key.method, error = %err, "the real client's error could not be encoded; sent as text");
                        text(message)
                    }
                },
            ),
            Error::SubscriptionEnded { reason, .. } => (reason.clone(), text(reason)),
            other => {
                let reason = other.to_string();
                let item = text(&reason);
                (reason, item)
            }
        };
        for (_, sink) in topic.sinks {
            match sink {
                Sink::Local(mailbox) => mailbox.close(Some(error.clone())),
                Sink::Remote {
                    outbox,
                    request: Some(request),
                } => {
                    let end = Some((reason.as_str(), typed, request));
                    if let Some(frame) = self.push_frame(key, item.clone(), end) {
                        let _ = outbox.try_send(&frame);
                    }
                }
                // A follower of the Node package knows no end: it would take it for an item.
                Sink::Remote { request: None, .. } => {}
            }
        }
    }
}

/// Queues `frame` for a follower; one whose queue is full is not reading what it subscribed to,
/// and its connection is closed.
fn send_or_stop(outbox: &Outbox, frame: &Bytes) {
    if outbox.try_send(frame) == Err(SendFailure::Full) {
        tracing::warn!("follower is not reading its subscription pushes; closing its connection");
        outbox.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::SlowConsumer;
    use crate::service::MethodKind;

    static SPEC: MethodSpec = MethodSpec::new("watch", MethodKind::Subscribe);

    fn key(i: usize) -> TopicKey {
        TopicKey {
            method: "watch",
            key: Arc::from(format!("$$inner$$__{i}")),
        }
    }

    fn sink() -> Sink {
        Sink::Local(Arc::new(Mailbox::new("watch", 4, SlowConsumer::KeepLatest)))
    }

    fn attach(topics: &Arc<Topics>, i: usize, owner: Owner) {
        let upstream: Start = Arc::new(|| {
            let items: crate::service::ItemStream = Box::pin(futures::stream::pending());
            Box::pin(std::future::ready(Ok(items)))
        });
        assert!(topics.attach(key(i), &SPEC, owner, sink(), Some(upstream)));
    }

    /// The owners' index answers for one owner and one topic, and stays right through attaching
    /// twice, detaching one topic, detaching a whole connection, and a topic's last sink leaving.
    #[tokio::test]
    async fn the_owner_index_follows_every_change() {
        let topics = Arc::new(Topics::new(
            Codec::Json,
            (Duration::from_millis(1), Duration::from_millis(1)),
        ));
        let (a, b) = (Owner::Conn(1), Owner::Conn(2));
        for i in 0..1000 {
            attach(&topics, i, a);
        }
        attach(&topics, 0, b);
        attach(&topics, 1, b);
        attach(&topics, 1, b);
        attach(&topics, 5000, b);
        assert_eq!(topics.count_for_conn(1), 1000);
        assert_eq!(topics.count_for_conn(2), 3, "attaching twice counts once");
        assert!(topics.is_held_by(&key(1), b));
        assert!(!topics.is_held_by(&key(2), b));
        assert_eq!(topics.lock().topics.len(), 1001);

        topics.detach(Some(&key(1)), b);
        assert!(!topics.is_held_by(&key(1), b));
        assert!(topics.is_held_by(&key(1), a), "the other owner keeps it");
        assert_eq!(topics.count_for_conn(2), 2);

        topics.detach(None, b);
        assert_eq!(topics.count_for_conn(2), 0);
        assert_eq!(
            topics.lock().topics.len(),
            1000,
            "the topic only b held is gone"
        );
        topics.detach(Some(&key(7)), a);
        assert_eq!(topics.lock().topics.len(), 999, "its last sink left");
        assert_eq!(topics.count_for_conn(1), 999);
        topics.detach(None, a);
        let map = topics.lock();
        assert!(map.topics.is_empty() && map.by_owner.is_empty());
    }

    /// A snapshot lists the first topics by key, up to the cap, and counts them all.
    #[tokio::test]
    async fn a_snapshot_lists_at_most_the_cap() {
        let topics = Arc::new(Topics::new(
            Codec::Json,
            (Duration::from_millis(1), Duration::from_millis(1)),
        ));
        for i in 0..MAX_TOPICS_LISTED + 44 {
            attach(&topics, i, Owner::Conn(1));
        }
        let (listed, total) = topics.snapshot();
        assert_eq!(total, MAX_TOPICS_LISTED + 44);
        assert_eq!(listed.len(), MAX_TOPICS_LISTED);
        assert!(listed.windows(2).all(|pair| pair[0].key < pair[1].key));
    }
}
