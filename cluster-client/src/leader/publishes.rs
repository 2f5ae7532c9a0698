//! The publishes this leader served, the latest per caller and arguments, to send to the real
//! client again when it says its upstream came back ([`Term::upstream_restored`](crate::Term)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::LeaderChannel;
use crate::protocol::args::Args;
use crate::service::MethodSpec;
use crate::stats::PublishStats;

/// Who published: this process, or a follower connection (forgotten when it closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Publisher {
    /// This process.
    Local,
    /// A follower connection, by id.
    Conn(u64),
}

/// A publisher's publishes: (method, framed arguments) to argument count, and their bytes. The
/// same arguments published again are one entry.
#[derive(Default)]
struct Remembered {
    entries: HashMap<(&'static str, Bytes), u32>,
    bytes: usize,
}

/// The remembered publishes, capped per publisher in count and in bytes.
pub(super) struct Publishes {
    map: Mutex<HashMap<Publisher, Remembered>>,
    cap: usize,
    max_bytes: usize,
}

impl Publishes {
    /// None yet; each publisher's are kept up to `cap` of them and `max_bytes` of arguments.
    pub(super) fn new(cap: usize, max_bytes: usize) -> Self {
        Publishes {
            map: Mutex::default(),
            cap,
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Publisher, Remembered>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a publish; `false` when it would take the publisher past `cap` publishes or
    /// `max_bytes` (it is not kept).
    pub(super) fn remember(
        &self,
        publisher: Publisher,
        spec: &'static MethodSpec,
        argc: u32,
        app: &Bytes,
    ) -> bool {
        let mut map = self.lock();
        let remembered = map.entry(publisher).or_default();
        // Its own bytes: a slice would keep the whole read buffer it came in.
        let key = (spec.name, Bytes::copy_from_slice(app));
        if remembered.entries.contains_key(&key) {
            return true;
        }
        if remembered.entries.len() >= self.cap
            || remembered.bytes.saturating_add(app.len()) > self.max_bytes
        {
            return false;
        }
        remembered.bytes += app.len();
        remembered.entries.insert(key, argc);
        true
    }

    /// Forgets a follower that left.
    pub(super) fn forget(&self, publisher: Publisher) {
        self.lock().remove(&publisher);
    }

    /// Every remembered publish.
    pub(super) fn all(&self) -> Vec<(&'static str, Args)> {
        self.lock()
            .values()
            .flat_map(|remembered| {
                remembered
                    .entries
                    .iter()
                    .map(|((method, app), argc)| (*method, Args::new(app.clone(), *argc)))
            })
            .collect()
    }

    /// The publishes remembered of `publisher`, or of every publisher.
    pub(super) fn stats(&self, publisher: Option<Publisher>) -> PublishStats {
        let map = self.lock();
        let mut stats = PublishStats::default();
        let of = |(who, _): &(&Publisher, &Remembered)| publisher.is_none_or(|p| p == **who);
        for (_, remembered) in map.iter().filter(of) {
            stats.count += remembered.entries.len() as u64;
            stats.bytes += remembered.bytes as u64;
        }
        stats
    }
}

impl LeaderChannel {
    /// Sends every remembered publish to the real client again, one after the other, each within
    /// `response_timeout`. Failures are logged once, at the end, with the first one's reason: a
    /// line per failed publish would be as many lines as followers can make the leader remember.
    pub(super) async fn republish(self: &Arc<Self>) {
        let publishes = self.publishes.all();
        let total = publishes.len();
        tracing::info!(channel = %self.name, publishes = total, "the real client's upstream is back; publishing again");
        let (mut failed, mut first) = (0usize, None);
        for (method, args) in publishes {
            let call = super::calls::run_guarded(
                Arc::clone(&self.service),
                method,
                args,
                self.options.codec,
            );
            let reason = match tokio::time::timeout(self.options.response_timeout, call).await {
                Ok(Ok(_)) => continue,
                Ok(Err(err)) => err.to_string(),
                Err(_) => "no answer in time".to_owned(),
            };
            failed += 1;
            first.get_or_insert((method, reason));
        }
        if let Some((method, reason)) = first {
            tracing::warn!(channel = %self.name, total, failed, first_method = method, first_reason = %reason, "publish replay: some publishes failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::MethodKind;

    static SPEC: MethodSpec = MethodSpec::new("register", MethodKind::Publish);

    /// The same arguments are one entry; a publisher's are capped in count and in bytes; a
    /// follower that leaves is forgotten, and the others stay.
    #[test]
    fn publishes_are_kept_once_capped_and_forgotten_with_their_publisher() {
        let publishes = Publishes::new(2, 1024);
        let (a, b) = (Publisher::Conn(1), Publisher::Local);
        let app = |n: u8| Bytes::from(vec![n]);
        assert!(publishes.remember(a, &SPEC, 1, &app(1)));
        assert!(publishes.remember(a, &SPEC, 1, &app(1)));
        assert!(publishes.remember(a, &SPEC, 1, &app(2)));
        assert!(!publishes.remember(a, &SPEC, 1, &app(3)), "past the cap");
        assert!(
            publishes.remember(a, &SPEC, 1, &app(2)),
            "a known one is kept"
        );
        assert!(publishes.remember(b, &SPEC, 1, &app(3)));
        assert_eq!(publishes.stats(None).count, 3);
        assert_eq!(publishes.stats(Some(a)).count, 2);
        assert_eq!(publishes.stats(Some(a)).bytes, 2);
        publishes.forget(a);
        assert_eq!(publishes.stats(None).count, 1);
        assert_eq!(publishes.stats(Some(a)).count, 0);
        assert_eq!(publishes.all().len(), 1);

        let c = Publisher::Conn(3);
        assert!(publishes.remember(c, &SPEC, 1, &Bytes::from(vec![0; 1000])));
        assert!(
            !publishes.remember(c, &SPEC, 1, &Bytes::from(vec![1; 100])),
            "past the bytes"
        );
        assert!(publishes.remember(c, &SPEC, 1, &Bytes::from(vec![2; 24])));
    }
}
