//! A foreign process on the port: `create()` against a port held by something that is not a
//! cluster-client leader fails with a typed error within the timeouts, naming the port and what was
//! there; no busy loop.

use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::time::Instant;

use crate::raw::{Foreign, ForeignServer};
use crate::support::{Worker, upstream};
use crate::{SEAM, SLACK};

/// `create()` failed with `ForeignPeer`, naming the port and what was found there.
fn assert_foreign(event: &serde_json::Value, port: u16, found: &str) {
    assert_eq!(event["event"], "failed", "{event}");
    assert_eq!(event["kind"], "foreign_peer", "{event}");
    let error = event["error"].as_str().expect("an error message");
    assert!(
        error.contains(&format!("port {port}")) && error.contains(found),
        "names the port and what it found: {error}"
    );
}

/// One kind of foreign peer, and how `create()` must meet it.
struct Case {
    peer: Foreign,
    worker: &'static str,
    /// The worker's `--max-wait-ms` (its `--connect-ms` is 300).
    max_wait_ms: u64,
    /// What the error says it found.
    found: &'static str,
    /// How long `create()` waits: at least this, at most this plus slack and a second. `None`: no
    /// bound is checked.
    waits_ms: Option<u64>,
    /// How many connections the peer accepts meanwhile, and why.
    accepted: RangeInclusive<usize>,
    why: &'static str,
}

const CASES: [Case; 3] = [
    // Accepts and stays silent: refused after one connect timeout, without retrying.
    Case {
        peer: Foreign::Silent,
        worker: "to-silent",
        max_wait_ms: 3000,
        found: "answered nothing",
        waits_ms: Some(300),
        accepted: 1..=1,
        why: "one attempt: a silent peer is not retried at create()",
    },
    // Accepts and closes: retried with backoff until max_wait_time, then a typed error naming it.
    // Backoff from 20 ms doubling to 1 s: about 6 rounds in 1 s. A busy loop would make thousands.
    Case {
        peer: Foreign::Closes,
        worker: "to-closer",
        max_wait_ms: 1000,
        found: "accepted the connection and closed it",
        waits_ms: Some(1000),
        accepted: 2..=30,
        why: "retried with backoff, not in a busy loop",
    },
    // Accepts and answers HTTP: refused at once as a peer that does not speak the protocol.
    Case {
        peer: Foreign::Http,
        worker: "to-http",
        max_wait_ms: 3000,
        found: "does not speak this protocol",
        waits_ms: None,
        accepted: 1..=1,
        why: "one attempt",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_process_on_the_port() {
    let up = upstream().await;
    for case in CASES {
        let server = ForeignServer::start(case.peer).await;
        let started = Instant::now();
        let max_wait = case.max_wait_ms.to_string();
        let (_worker, event) = Worker::start(
            case.worker,
            SEAM,
            server.port,
            &up,
            &["--connect-ms", "300", "--max-wait-ms", &max_wait],
        )
        .await;
        let elapsed = started.elapsed();
        eprintln!(
            "{:?} peer: {event} after {elapsed:?}, {} connections",
            case.peer,
            server.accepted()
        );
        assert_foreign(&event, server.port, case.found);
        if let Some(waits_ms) = case.waits_ms {
            let waits = Duration::from_millis(waits_ms);
            assert!(elapsed >= waits, "{:?}: it waited {waits:?}", case.peer);
            assert!(
                elapsed < waits + SLACK + Duration::from_secs(1),
                "{:?}: within {waits:?}: {elapsed:?}",
                case.peer
            );
        }
        assert!(
            case.accepted.contains(&server.accepted()),
            "{:?}: {}: {} connections",
            case.peer,
            case.why,
            server.accepted()
        );
    }
    assert_eq!(
        up.stats().total_connections,
        0,
        "no real client was ever built"
    );
}
