//! One process, loopback TCP: a leader handle and a follower handle of the same channel, driven
//! through a hand-written implementation of the service seam.

mod common;

use common::free_port;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_client::__private::{self as seam, Args, BoxFuture, EncodeArgs, Prepared};
use cluster_client::protocol::FaultCode;
use cluster_client::service::{MethodKind, MethodSpec, Reply, Schema, Service, ServiceError};
use cluster_client::transcode::Transcode;
use cluster_client::{Codec, Error, Handle, Options, Subscription};
use futures::StreamExt;
use tokio::sync::broadcast;

static SCHEMA: Schema = Schema {
    name: "Echo",
    fingerprint: 0xfeed,
    methods: &[
        MethodSpec::new("echo", MethodKind::Invoke),
        MethodSpec::new("fail", MethodKind::Invoke),
        MethodSpec::new("note", MethodKind::Oneway),
        MethodSpec::new("watch", MethodKind::Subscribe),
        MethodSpec::new("announce", MethodKind::Publish),
        MethodSpec::new("close", MethodKind::Close),
    ],
};

/// The real client: counts notes, echoes, and publishes announcements to watchers.
struct Echo {
    notes: AtomicUsize,
    feed: broadcast::Sender<String>,
    upstream_subs: Arc<AtomicUsize>,
    /// Announcements received, by every real client of the test.
    announced: Arc<AtomicUsize>,
    /// How long `close` takes, and the count of closes that have finished.
    closing: (Duration, Arc<AtomicUsize>),
}

impl Echo {
    fn new(upstream_subs: Arc<AtomicUsize>, announced: Arc<AtomicUsize>) -> Self {
        Echo {
            notes: AtomicUsize::new(0),
            feed: broadcast::channel(64).0,
            upstream_subs,
            announced,
            closing: (Duration::ZERO, Arc::default()),
        }
    }
}

/// Decrements the live-subscription counter when the upstream stream is dropped.
struct Live(Arc<AtomicUsize>);
impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Service for Echo {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn call(
        self: Arc<Self>,
        codec: Codec,
        method: &str,
        args: Args,
    ) -> BoxFuture<Result<Reply, ServiceError>> {
        match method {
            "echo" => seam::serve_invoke(codec, "echo", args, |(s,): (String,)| async move {
                Ok::<_, String>(s)
            }),
            "fail" => seam::serve_invoke(codec, "fail", args, |(s,): (String,)| async move {
                Err::<(), _>(s)
            }),
            "note" => seam::serve_oneway(codec, "note", args, move |(): ()| async move {
                self.notes.fetch_add(1, Ordering::SeqCst);
            }),
            "announce" => {
                seam::serve_oneway(codec, "announce", args, move |(s,): (String,)| async move {
                    self.announced.fetch_add(1, Ordering::SeqCst);
                    let _ = self.feed.send(s);
                })
            }
            other => Box::pin(std::future::ready(Err(ServiceError::unknown(
                other,
                MethodKind::Invoke,
            )))),
        }
    }

    fn subscribe(
        self: Arc<Self>,
        codec: Codec,
        method: &str,
        app: Bytes,
    ) -> Result<Prepared, ServiceError> {
        match method {
            "watch" => seam::serve_subscribe(codec, "watch", app, move |(prefix,): (String,)| {
                self.upstream_subs.fetch_add(1, Ordering::SeqCst);
                let live = Live(Arc::clone(&self.upstream_subs));
                let rx = self.feed.subscribe();
                Subscription::from_stream(futures::stream::unfold(
                    (rx, live, prefix),
                    |(mut rx, live, prefix)| async move {
                        loop {
                            match rx.recv().await {
                                Ok(s) => return Some((format!("{prefix}{s}"), (rx, live, prefix))),
                                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                                Err(broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                    },
                ))
            }),
            other => Err(ServiceError::unknown(other, MethodKind::Subscribe)),
        }
    }

    fn close(self: Arc<Self>) -> BoxFuture<()> {
        Box::pin(async move {
            let (pause, closed) = &self.closing;
            tokio::time::sleep(*pause).await;
            closed.fetch_add(1, Ordering::SeqCst);
        })
    }
}

async fn handle(port: u16, subs: Arc<AtomicUsize>) -> Handle {
    let options = Options::new("echo")
        .port(port)
        .response_timeout(Duration::from_secs(2));
    handle_with(options, subs).await
}

async fn handle_with(options: Options, subs: Arc<AtomicUsize>) -> Handle {
    handle_counting(options, subs, Arc::default()).await
}

async fn handle_counting(
    options: Options,
    subs: Arc<AtomicUsize>,
    announced: Arc<AtomicUsize>,
) -> Handle {
    seam::create_with(options, &SCHEMA, move |_term| {
        let (subs, announced) = (Arc::clone(&subs), Arc::clone(&announced));
        async move { Ok::<_, String>(Echo::new(subs, announced)) }
    })
    .await
    .unwrap()
}

fn app<A: EncodeArgs>(args: A) -> Bytes {
    let mut out = BytesMut::new();
    args.encode(Codec::default(), &mut out).unwrap();
    out.freeze()
}

/// The schema's entry of that name: what a generated client passes from its `SCHEMA`.
fn spec(name: &str) -> &'static MethodSpec {
    SCHEMA.method(name).expect("a method of the test schema")
}

async fn echo(h: &Handle, s: &str) -> Result<String, Error> {
    match h.call(spec("echo"), 1, app((s.to_owned(),))).await? {
        Reply::Value(b) => Ok(Codec::default().decode(&b)?),
        Reply::Error(_) => panic!("echo does not fail"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_follower_in_one_process() {
    let port = free_port();
    let subs = Arc::new(AtomicUsize::new(0));
    let leader = handle(port, Arc::clone(&subs)).await;
    let follower = handle(port, Arc::clone(&subs)).await;
    assert!(leader.is_leader());
    assert!(!follower.is_leader());
    assert_eq!(leader.epoch(), follower.epoch());

    assert_eq!(echo(&leader, "a").await.unwrap(), "a");
    assert_eq!(echo(&follower, "b").await.unwrap(), "b");
    match follower
        .call(spec("fail"), 1, app(("boom".to_owned(),)))
        .await
        .unwrap()
    {
        Reply::Error(b) => assert_eq!(Codec::default().decode::<String>(&b).unwrap(), "boom"),
        other => panic!("expected the method's error, got {other:?}"),
    }
    // A spec of another kind than the entry point's is refused before anything is sent.
    match follower
        .call(spec("watch"), 1, app(("x:".to_owned(),)))
        .await
    {
        Err(Error::Remote { name, .. }) => assert_eq!(name, FaultCode::UnknownMethod),
        other => panic!("expected unknown_method, got {other:?}"),
    }

    let mut a: Subscription<String> =
        follower.subscribe(spec("watch"), "\"x:\"".into(), app(("x:".to_owned(),)));
    let mut b: Subscription<String> =
        leader.subscribe(spec("watch"), "\"x:\"".into(), app(("x:".to_owned(),)));
    // Give the follower's subscribe packet time to reach the leader before publishing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        subs.load(Ordering::SeqCst),
        1,
        "one upstream subscription per key"
    );
    follower
        .publish(
            spec("announce"),
            "\"hello\"".into(),
            1,
            app(("hello".to_owned(),)),
        )
        .await
        .unwrap();
    let got_a = tokio::time::timeout(Duration::from_secs(2), a.next())
        .await
        .unwrap();
    let got_b = tokio::time::timeout(Duration::from_secs(2), b.next())
        .await
        .unwrap();
    assert_eq!(got_a.as_deref(), Some("x:hello"));
    assert_eq!(got_b.as_deref(), Some("x:hello"));

    drop(a);
    drop(b);
    for _ in 0..100 {
        if subs.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        subs.load(Ordering::SeqCst),
        0,
        "upstream subscription ends with the last subscriber"
    );

    leader.close().await;
    // The follower takes over.
    let mut took_over = false;
    for _ in 0..200 {
        if follower.is_leader() {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(took_over, "follower became leader after the leader closed");
    assert_eq!(echo(&follower, "c").await.unwrap(), "c");
    assert!(matches!(echo(&leader, "d").await, Err(Error::Closed)));
    follower.close().await;
    // Closing the last leader of the port releases it.
    let mut released = false;
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "the port is free after close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_a_first_item_in_time_ends_with_subscribe_timeout() {
    let port = free_port();
    let subs = Arc::new(AtomicUsize::new(0));
    let options = Options::new("echo")
        .port(port)
        .subscribe_timeout(Duration::from_millis(100));
    let leader = handle_with(options, subs).await;
    let mut quiet: Subscription<String> =
        leader.subscribe(spec("watch"), "\"q:\"".into(), app(("q:".to_owned(),)));
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(2), quiet.next())
        .await
        .unwrap();
    assert_eq!(end, None, "the stream ended");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        matches!(
            quiet.close_reason(),
            Some(Error::SubscribeTimeout { ms: 100, .. })
        ),
        "{:?}",
        quiet.close_reason()
    );
    leader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_replayed_on_the_new_leader_after_a_takeover() {
    let port = free_port();
    let options = Options::new("echo")
        .port(port)
        .response_timeout(Duration::from_secs(2));
    let (subs, announced) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let leader = handle_counting(options.clone(), Arc::clone(&subs), Arc::clone(&announced)).await;
    let follower = handle_counting(options, subs, Arc::clone(&announced)).await;
    assert!(!follower.is_leader());
    let announce = app(("hello".to_owned(),));
    follower
        .publish(spec("announce"), "\"hello\"".into(), 1, announce)
        .await
        .unwrap();
    // A publish is oneway: it has reached the real client when the counter says so.
    let announcements = |n: usize| {
        let announced = Arc::clone(&announced);
        tokio::time::timeout(Duration::from_secs(5), async move {
            while announced.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    announcements(1)
        .await
        .expect("the leader's real client got the publish");

    leader.close().await;
    // The follower takes over with a new real client, and sends it the remembered publish again.
    announcements(2)
        .await
        .expect("the publish was replayed on the new leader");
    assert!(follower.is_leader());
    follower.close().await;
}

/// A subscription of a leader that outlives its handle (dropped, not closed) ends with
/// `Error::Closed` rather than waiting forever: the stopping leader no longer ends its own
/// process's subscriptions (they move to the next role after a resignation), so the handle does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaders_subscription_ends_when_its_handle_is_dropped() {
    let options = Options::new("echo").port(free_port());
    let leader = handle_with(options, Arc::new(AtomicUsize::new(0))).await;
    assert!(leader.is_leader());
    let mut orphan: Subscription<String> =
        leader.subscribe(spec("watch"), "\"o:\"".into(), app(("o:".to_owned(),)));
    drop(leader);
    let end = tokio::time::timeout(Duration::from_secs(2), orphan.next())
        .await
        .expect("the stream ends");
    assert_eq!(end, None);
    assert!(
        matches!(orphan.close_reason(), Some(Error::Closed)),
        "{:?}",
        orphan.close_reason()
    );
}

/// `close()` while a leader whose real client resigned is stepping down returns only once that
/// real client has closed (before, it found no role to leave and returned at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_resignation_waits_for_the_real_client_to_close() {
    let options = Options::new("echo").port(free_port());
    let terms = Arc::new(std::sync::Mutex::new(Vec::new()));
    let closed = Arc::new(AtomicUsize::new(0));
    let leader = seam::create_with(options, &SCHEMA, {
        let (terms, closed) = (Arc::clone(&terms), Arc::clone(&closed));
        move |term| {
            terms.lock().unwrap().push(term);
            let mut echo = Echo::new(Arc::default(), Arc::default());
            echo.closing = (Duration::from_millis(300), Arc::clone(&closed));
            async move { Ok::<_, String>(echo) }
        }
    })
    .await
    .unwrap();
    assert!(leader.is_leader());
    let term = terms.lock().unwrap()[0].clone();
    term.resign();
    // The supervisor steps down: the handle leads no more while the real client closes.
    tokio::time::timeout(Duration::from_secs(2), async {
        while leader.is_leader() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the resigned leader steps down");
    assert_eq!(closed.load(Ordering::SeqCst), 0, "the close takes 300 ms");
    leader.close().await;
    assert_eq!(
        closed.load(Ordering::SeqCst),
        1,
        "close() returned before the resigned real client closed"
    );
}
