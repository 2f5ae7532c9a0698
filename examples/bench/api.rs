//! The benchmark's own trait and its trivial in-memory real client: what is measured is the cost of
//! forwarding, not of any upstream system.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cluster_client::{Subscription, cluster_client};
use futures::channel::mpsc;
use serde::{Deserialize, Serialize};

use crate::util::now_ns;

/// The channel every benchmark process joins.
pub const CHANNEL: &str = "bench";

/// The argument of every `feed` subscription.
pub const TOPIC: &str = "bench";

/// An invoke error: only transport failures happen here.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

impl From<cluster_client::Error> for BenchError {
    fn from(err: cluster_client::Error) -> Self {
        BenchError(format!("{}: {err}", err.kind()))
    }
}

/// One pushed item: its sequence number (0 marks a warm-up item) and its send time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// 1, 2, … for measured items; 0 for warm-up items.
    pub seq: u64,
    /// When the real client emitted it, in ns since the UNIX epoch (one host, one clock).
    pub sent_ns: u64,
    /// Padding to the item size.
    pub pad: String,
}

/// Payloads are `String`s: serde writes them in one piece with every codec, where a `Vec<u8>` is a
/// sequence of single bytes that would make the codec, not the forwarding, the cost being measured.
#[cluster_client(name = "bench")]
pub trait Bench {
    /// Returns its argument.
    async fn echo(&self, payload: String) -> Result<String, BenchError>;

    /// The process id of the leader that runs the real client.
    async fn pid(&self) -> Result<u32, BenchError>;

    /// The same, declared idempotent: a call on the wire when the leader is lost is sent to the
    /// next leader instead of failing.
    #[invoke(idempotent)]
    async fn pid_idempotent(&self) -> Result<u32, BenchError>;

    /// Counts the call in the leader.
    #[oneway]
    async fn sink(&self, payload: String);

    /// Every item the leader's real client emits for `topic`.
    #[subscribe]
    fn feed(&self, topic: String) -> Subscription<Item>;
}

/// The leader's side of the benchmark: what its real client counts and where it pushes.
#[derive(Default)]
pub struct Hub {
    sink_count: AtomicU64,
    sink_first_ns: AtomicU64,
    sink_last_ns: AtomicU64,
    feeds: Mutex<Vec<mpsc::UnboundedSender<Item>>>,
}

/// Oneway calls the real client ran since the last reset, and when the first and last ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SinkStats {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Hub {
    fn on_sink(&self) {
        let now = now_ns();
        if self.sink_count.fetch_add(1, Ordering::Relaxed) == 0 {
            self.sink_first_ns.store(now, Ordering::Relaxed);
        }
        self.sink_last_ns.fetch_max(now, Ordering::Relaxed);
    }

    /// The oneway counters.
    pub fn sink_stats(&self) -> SinkStats {
        SinkStats {
            count: self.sink_count.load(Ordering::Relaxed),
            first_ns: self.sink_first_ns.load(Ordering::Relaxed),
            last_ns: self.sink_last_ns.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the oneway counters.
    pub fn reset(&self) {
        self.sink_count.store(0, Ordering::Relaxed);
        self.sink_first_ns.store(0, Ordering::Relaxed);
        self.sink_last_ns.store(0, Ordering::Relaxed);
    }

    /// Emits one item, stamped now, on every upstream subscription; returns how many got it.
    pub fn emit(&self, seq: u64, pad: &str) -> usize {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        let item = Item {
            seq,
            sent_ns: now_ns(),
            pad: pad.to_owned(),
        };
        feeds.retain(|feed| feed.unbounded_send(item.clone()).is_ok());
        feeds.len()
    }
}

/// The real client: answers at once, from memory.
pub struct Real(pub Arc<Hub>);

impl Bench for Real {
    async fn echo(&self, payload: String) -> Result<String, BenchError> {
        Ok(payload)
    }

    async fn pid(&self) -> Result<u32, BenchError> {
        Ok(std::process::id())
    }

    async fn pid_idempotent(&self) -> Result<u32, BenchError> {
        Ok(std::process::id())
    }

    async fn sink(&self, _payload: String) {
        self.0.on_sink();
    }

    fn feed(&self, _topic: String) -> Subscription<Item> {
        let (tx, rx) = mpsc::unbounded();
        self.0
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Subscription::from_stream(rx)
    }
}
