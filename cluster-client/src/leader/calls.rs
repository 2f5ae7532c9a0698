//! Calls on the real client: this process's own (`call_local`), and a follower's (`invoke`), whose
//! answer goes back on its connection. A panic in the real client is answered as a fault.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use tracing::Instrument;

use super::LeaderChannel;
use super::connection::{Conn, send};
use super::publishes::Publisher;
use crate::error::Error;
use crate::io::writer::{Flush, Outbox};
use crate::protocol::args::Args;
use crate::protocol::conn::InvokeResult;
use crate::protocol::fault_body::FaultBody;
use crate::protocol::{ConnObject, Packet};
use crate::service::{MethodKind, MethodSpec, Reply, Service, ServiceError};
use crate::transcode::{Codec, Transcode};

impl LeaderChannel {
    /// Runs an invoke, oneway or publish call of this process on the real client, cancelled at its
    /// deadline.
    pub(crate) async fn call_local(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        deadline: Duration,
    ) -> Result<Reply, Error> {
        self.remember_publish(Publisher::Local, spec, argc, &app);
        let args = Args::new(app, argc);
        let call = run_guarded(
            Arc::clone(&self.service),
            spec.name,
            args,
            self.options.codec,
        )
        .instrument(tracing::trace_span!("call", method = spec.name));
        self.calls.start();
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => {
                self.calls.end(&result);
                result.map_err(|e| Error::Remote {
                    name: e.fault().to_owned(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                self.calls.abandon();
                Err(Error::timeout(spec.name, deadline))
            }
        }
    }

    /// Starts a call of a follower; its answer is sent only if it finishes within the deadline the
    /// leader grants it (see [`Options::max_call_timeout`](crate::Options::max_call_timeout)). The
    /// call counts against the follower's cap until its answer is queued, and is cancelled when the
    /// follower's connection closes.
    pub(super) async fn invoke(
        self: &Arc<Self>,
        conn: &Conn,
        id: i64,
        timeout: i32,
        method: &str,
        args: Args,
        oneway: bool,
    ) {
        let kinds = [MethodKind::Invoke, MethodKind::Oneway, MethodKind::Publish];
        let limit = self.options.max_calls_per_follower;
        self.calls.start();
        let to = AnswerTo {
            outbox: &conn.outbox,
            id,
            timeout,
            oneway,
        };
        let spec = match self.spec_for(method, &kinds) {
            Err(err) => return self.answer(&to, Err(err), conn.flush()),
            Ok(_) if conn.in_flight.load(Ordering::Relaxed) >= limit => {
                let err = ServiceError::Overloaded { limit };
                return self.answer(&to, Err(err), conn.flush());
            }
            Ok(spec) => spec,
        };
        let held = match self.load.hold(args.unread().len()) {
            Ok(held) => held,
            Err(err) => return self.answer(&to, Err(err), conn.flush()),
        };
        self.remember_publish(
            Publisher::Conn(conn.id),
            spec,
            args.declared(),
            args.unread(),
        );
        let span = tracing::trace_span!("call", method = spec.name, id);
        let mut call = Box::pin(
            run_guarded(
                Arc::clone(&self.service),
                spec.name,
                args,
                self.options.codec,
            )
            .instrument(span),
        );
        // Most calls of an in-memory or cached real client finish at once: run them here, with no
        // task, timer or hop; only a call that has to wait gets its own task.
        let once = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = once {
            drop(held);
            return self.answer(&to, result, conn.flush());
        }
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = Arc::clone(&conn.in_flight);
        let this = Arc::clone(self);
        let deadline = self.deadline(timeout);
        // Only a call that waits holds its own handles on the connection.
        let (outbox, stop) = (conn.outbox.clone(), conn.stop.clone());
        self.tasks.spawn(async move {
            let to = AnswerTo {
                outbox: &outbox,
                id,
                timeout,
                oneway,
            };
            let started = Instant::now();
            // The connection's stop is a child of the leader's: a leader that stops, and a follower
            // that leaves, both cancel the call.
            let result = tokio::select! {
                () = stop.cancelled() => None,
                result = tokio::time::timeout(deadline, call) => result.ok(),
            };
            match result {
                Some(result) => this.answer(&to, result, Flush::Now),
                None => {
                    this.calls.abandon();
                    tracing::debug!(
                    method = spec.name,
                    elapsed = ?started.elapsed(),
                    "call not answered: past its deadline, or its connection closed"
                    );
                }
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(held);
        });
    }

    /// Remembers a call of a `#[publish]` method (other calls are not kept) to send again when
    /// the upstream comes back.
    fn remember_publish(
        &self,
        publisher: Publisher,
        spec: &'static MethodSpec,
        argc: u32,
        app: &Bytes,
    ) {
        if spec.kind == MethodKind::Publish && !self.publishes.remember(publisher, spec, argc, app)
        {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(channel = %self.name, method = spec.name, limit = self.options.max_publishes_per_follower, max_bytes = self.options.max_publish_bytes_per_follower, left_out, "too many publishes to remember; this one is served but not remembered");
            }
        }
    }

    /// The deadline of a follower's call that asked for `timeout` ms: none or 0 gets
    /// `response_timeout`, more than `max_call_timeout` gets that.
    fn deadline(&self, timeout: i32) -> Duration {
        match u64::try_from(timeout) {
            Ok(ms) if ms > 0 => Duration::from_millis(ms).min(self.options.max_call_timeout),
            _ => self.options.response_timeout,
        }
    }

    /// Queues an `invoke_result` (nothing for a oneway call; its failure is logged).
    fn answer(&self, to: &AnswerTo<'_>, result: Result<Reply, ServiceError>, flush: Flush) {
        self.calls.end(&result);
        let (success, fault, app) = match result {
            Ok(Reply::Value(bytes)) => (true, None, bytes),
            Ok(Reply::Error(bytes)) => (false, None, bytes),
            Err(err) => {
                if let Some(left_out) = self.warnings.admit() {
                    tracing::warn!(channel = %self.name, error = %err, left_out, "call failed in the leader");
                }
                let fault = err.fault().to_owned();
                let body = FaultBody {
                    name: fault.as_str().to_owned(),
                    message: err.to_string(),
                    code: fault.as_str().to_owned(),
                };
                let mut app = BytesMut::new();
                let app = match self.options.codec.encode(&body, &mut app) {
                    Ok(()) => app.freeze(),
                    Err(_) => Bytes::from(body.message),
                };
                (false, Some(fault), app)
            }
        };
        if to.oneway {
            return;
        }
        let conn_object = ConnObject::InvokeResult(InvokeResult { success, fault });
        let packet = Packet::response(to.id, to.timeout, conn_object, app);
        send(to.outbox, &packet, flush);
    }
}

/// Where a follower's call is answered.
struct AnswerTo<'a> {
    outbox: &'a Outbox,
    id: i64,
    timeout: i32,
    oneway: bool,
}

/// Runs a call on the real client, turning a panic into a fault instead of losing the answer.
pub(super) async fn run_guarded(
    service: Arc<dyn Service>,
    method: &'static str,
    args: Args,
    codec: Codec,
) -> Result<Reply, ServiceError> {
    let call = std::panic::AssertUnwindSafe(async move { service.call(codec, method, args).await });
    match call.catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(method, "the real client panicked");
            Err(ServiceError::Panicked { method })
        }
    }
}
