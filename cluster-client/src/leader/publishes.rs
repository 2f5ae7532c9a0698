//! The publishes this leader served, the latest per caller and arguments, to send to the real
//! client again when it says its upstream came back ([`Term::upstream_restored`](crate::Term)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::LeaderChannel;
use crate::protocol::args::Args;
use crate::service::MethodSpec;

/// Who published: this process, or a follower connection (forgotten when it closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Publisher {
    /// This process.
    Local,
    /// A follower connection, by id.
    Conn(u64),
}

/// A publisher's publishes: (method, framed arguments) to argument count. The same arguments
/// published again are one entry.
type Remembered = HashMap<(&'static str, Bytes), u32>;

/// The remembered publishes, capped per publisher.
pub(super) struct Publishes {
    map: Mutex<HashMap<Publisher, Remembered>>,
    cap: usize,
}

impl Publishes {
    /// None yet; each publisher's are kept up to `cap`.
    pub(super) fn new(cap: usize) -> Self {
        Publishes {
            map: Mutex::default(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Publisher, Remembered>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a publish; `false` when the publisher already has `cap` others (it is not kept).
    pub(super) fn remember(
        &self,
        publisher: Publisher,
        spec: &'static MethodSpec,
        argc: u32,
        app: &Bytes,
    ) -> bool {
        let mut map = self.lock();
        let remembered = map.entry(publisher).or_default();
        let key = (spec.name, app.clone());
        if remembered.len() >= self.cap && !remembered.contains_key(&key) {
            return false;
        }
        remembered.insert(key, argc);
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
                    .iter()
                    .map(|((method, app), argc)| (*method, Args::new(app.clone(), *argc)))
            })
            .collect()
    }

    /// How many publishes are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }
}

impl LeaderChannel {
    /// Sends every remembered publish to the real client again, one after the other, each within
    /// `response_timeout`.
    pub(super) async fn republish(self: &Arc<Self>) {
        let publishes = self.publishes.all();
        tracing::info!(channel = %self.name, publishes = publishes.len(), "the real client's upstream is back; publishing again");
        for (method, args) in publishes {
            let call = super::calls::run_guarded(
                Arc::clone(&self.service),
                method,
                args,
                self.options.codec,
            );
            match tokio::time::timeout(self.options.response_timeout, call).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(channel = %self.name, method, error = %err, "publish replay failed")
                }
                Err(_) => {
                    tracing::warn!(channel = %self.name, method, "publish replay got no answer in time")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::MethodKind;

    static SPEC: MethodSpec = MethodSpec::new("register", MethodKind::Publish);

    /// The same arguments are one entry; a publisher's are capped; a follower that leaves is
    /// forgotten, and the others stay.
    #[test]
    fn publishes_are_kept_once_capped_and_forgotten_with_their_publisher() {
        let publishes = Publishes::new(2);
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
        assert_eq!(publishes.len(), 3);
        publishes.forget(a);
        assert_eq!(publishes.len(), 1);
        assert_eq!(publishes.all().len(), 1);
    }
}
