//! A hand-written service for the in-process tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::__private::{serve_invoke, serve_subscribe};
use crate::protocol::args::Args;
use crate::service::{
    BoxFuture, MethodKind, MethodSpec, Prepared, Reply, Schema, Service, ServiceError,
};
use crate::subscription::Subscription;
use crate::transcode::Codec;

pub(crate) static SCHEMA: Schema = Schema {
    name: "Test",
    fingerprint: 0x1234,
    methods: &[
        MethodSpec::new("add", MethodKind::Invoke),
        MethodSpec::new("sleep", MethodKind::Invoke),
        MethodSpec::new("panic", MethodKind::Invoke),
        MethodSpec::new("blob", MethodKind::Invoke),
        MethodSpec::new("count", MethodKind::Subscribe),
        MethodSpec::new("hold", MethodKind::Subscribe),
        MethodSpec {
            broadcast: false,
            ..MethodSpec::new("work", MethodKind::Subscribe)
        },
        MethodSpec {
            resubscribe: true,
            ..MethodSpec::new("flaky", MethodKind::Subscribe)
        },
        MethodSpec::new("doomed", MethodKind::Subscribe),
        MethodSpec::new("refused", MethodKind::Subscribe),
    ],
};

/// Adds, sleeps, panics, makes blobs, counts, holds a subscription open, and hands out work from
/// `feed`.
#[derive(Default)]
pub(crate) struct TestService {
    pub(crate) feed: Feed,
    /// How many `sleep` calls are running now (a cancelled call stops counting).
    pub(crate) sleeping: Arc<AtomicUsize>,
    /// How many times the real client subscribed `flaky`.
    pub(crate) flaky_starts: Arc<AtomicUsize>,
}

/// Counts one running call while it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(count))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The items of the `work` subscription.
pub(crate) struct Feed(pub(crate) tokio::sync::broadcast::Sender<u32>);

impl Default for Feed {
    fn default() -> Self {
        Feed(tokio::sync::broadcast::channel(256).0)
    }
}

impl Service for TestService {
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
            "add" => serve_invoke(codec, "add", args, |(a, b): (u32, u32)| async move {
                a.checked_add(b).ok_or_else(|| "overflow".to_owned())
            }),
            "sleep" => serve_invoke(codec, "sleep", args, |(ms,): (u64,)| {
                let running = Running::start(&self.sleeping);
                async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    drop(running);
                    Ok::<_, String>(ms)
                }
            }),
            "blob" => serve_invoke(codec, "blob", args, |(len,): (u32,)| async move {
                // Answered after a yield, so that the call gets its own task.
                tokio::task::yield_now().await;
                Ok::<_, String>(vec![7u8; len as usize])
            }),
            "panic" => serve_invoke(codec, "panic", args, |(): ()| async move {
                if true {
                    panic!("the real client panicked on purpose");
                }
                Ok::<(), String>(())
            }),
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
            "count" => serve_subscribe(codec, "count", app, |(n,): (u32,)| {
                Subscription::from_stream(futures::stream::iter(0..n))
            }),
            "hold" => serve_subscribe(codec, "hold", app, |(_n,): (u32,)| {
                Subscription::from_stream(futures::stream::pending::<u32>())
            }),
            "work" => serve_subscribe(codec, "work", app, move |(): ()| {
                let rx = self.feed.0.subscribe();
                Subscription::from_stream(futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.ok().map(|item| (item, rx))
                }))
            }),
            // Subscribe n: two items, then its stream fails; `resubscribe` starts it again.
            "flaky" => serve_subscribe(codec, "flaky", app, move |(): ()| {
                let n = self.flaky_starts.fetch_add(1, Ordering::SeqCst) as u32;
                let items = [Ok(n * 10), Ok(n * 10 + 1), Err(format!("reset {n}"))];
                Subscription::from_try_stream(futures::stream::iter(items))
            }),
            // One item, then the real client's own error ends it.
            "doomed" => serve_subscribe(codec, "doomed", app, |(): ()| {
                let items = [Ok(1u32), Err("gone for good".to_owned())];
                Subscription::from_try_stream(futures::stream::iter(items))
            }),
            // An async subscribe that fails upstream.
            "refused" => crate::__private::serve_subscribe_async(
                codec,
                "refused",
                app,
                |(topic,): (String,)| async move {
                    tokio::task::yield_now().await;
                    Err::<Subscription<u32>, _>(format!("no topic {topic}"))
                },
            ),
            other => Err(ServiceError::unknown(other, MethodKind::Subscribe)),
        }
    }

    fn close(self: Arc<Self>) -> BoxFuture<()> {
        Box::pin(async {})
    }
}
