//! Calls to the leader: each two-way call waits in [`Pending`] under a request id for its answer,
//! which the read loop hands over; one sweeper per connection fails the calls whose deadline passed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::pending::Due;
use super::{FollowerConn, millis};
use crate::error::Error;
use crate::io::clock;
use crate::io::writer::{Flush, SendError};
use crate::protocol::conn::{Invoke, InvokeResult};
use crate::protocol::fault_body::FaultBody;
use crate::protocol::{ConnObject, FaultCode, Packet};
use crate::service::{MethodSpec, Reply};
use crate::transcode::Transcode;

/// Why a call to the leader failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The leader was lost before a byte of the call left this process: it can go to the next
    /// leader, whatever its method.
    Unsent,
    /// It failed: on the wire when the leader was lost ([`Error::LeaderLost`]), or otherwise.
    Failed(Error),
}

impl CallError {
    /// The error a caller that cannot send the call elsewhere sees.
    pub(crate) fn into_error(self, method: &str) -> Error {
        match self {
            CallError::Unsent => Error::LeaderLost {
                method: method.to_owned(),
            },
            CallError::Failed(err) => err,
        }
    }
}

impl From<Error> for CallError {
    fn from(err: Error) -> Self {
        CallError::Failed(err)
    }
}

/// A call waiting for its answer.
pub(super) struct PendingCall {
    pub(super) method: &'static str,
    pub(super) tx: oneshot::Sender<Result<Packet, Error>>,
    /// When the call fails with [`Error::Timeout`], unless answered first.
    deadline: Instant,
    /// Its deadline as configured, for the error.
    timeout: Duration,
}

impl Due for PendingCall {
    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl FollowerConn {
    /// Sends a call; a two-way call waits for its answer for `timeout`.
    #[cfg(test)]
    pub(crate) async fn call(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        oneway: bool,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let deadline = Instant::now() + timeout;
        self.call_until(spec, argc, app, oneway, deadline, timeout)
            .await
            .map_err(|err| err.into_error(spec.name))
    }

    /// Sends a call; a two-way call waits for its answer until `deadline` (`timeout` after the call
    /// began: it goes in the header and in the error).
    pub(crate) async fn call_until(
        &self,
        spec: &'static MethodSpec,
        argc: u32,
        app: Bytes,
        oneway: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let conn = ConnObject::Invoke(Invoke {
            method: spec.name.to_owned(),
            arg_length: argc,
            oneway,
        });
        let Some(answer) = self
            .request(spec.name, conn, app, !oneway, deadline, timeout)
            .await?
        else {
            return Ok(Reply::Value(Bytes::new()));
        };
        match answer.conn {
            ConnObject::InvokeResult(InvokeResult { success: true, .. }) => {
                Ok(Reply::Value(answer.app))
            }
            ConnObject::InvokeResult(InvokeResult {
                success: false,
                fault: None,
            }) => Ok(Reply::Error(answer.app)),
            ConnObject::InvokeResult(InvokeResult {
                fault: Some(name), ..
            }) => Err(CallError::Failed(Error::Remote {
                name,
                message: self
                    .options
                    .codec
                    .decode::<FaultBody>(&answer.app)
                    .map_or_else(
                        |_| String::from_utf8_lossy(&answer.app).into_owned(),
                        |body| body.message,
                    ),
            })),
            other => Err(CallError::Failed(Error::Remote {
                name: FaultCode::UnexpectedAnswer,
                message: format!("`{}` answered with {}", spec.name, other.type_name()),
            })),
        }
    }

    /// Sends a request; with `wait`, awaits its response until `deadline`.
    pub(super) async fn request(
        &self,
        method: &'static str,
        conn: ConnObject,
        app: Bytes,
        wait: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<Packet>, CallError> {
        if self.is_lost() {
            return Err(CallError::Unsent);
        }
        let (id, rx, in_flight) = if wait {
            let (tx, rx) = oneshot::channel();
            let call = PendingCall {
                method,
                tx,
                deadline,
                timeout,
            };
            let (id, in_flight) = self.track(call);
            // Lost between the check above and `track`: the read loop's drain may have missed
            // this call, and nothing else would end it.
            if self.is_lost() {
                self.pending.remove(id);
                return Err(CallError::Unsent);
            }
            (id, Some(rx), in_flight)
        } else {
            (self.ids.next(), None, self.pending.len() + 1)
        };
        // A lone call is written at once; with others in flight, the writer task sends the burst in
        // one write.
        let flush = if in_flight > 1 {
            Flush::Soon
        } else {
            Flush::Now
        };
        // A leader that reads nothing leaves no room: the call waits for some until its deadline,
        // and then ends unsent (nothing of it was queued) with `Timeout`.
        let packet = Packet::request(id, millis(timeout), conn, app);
        let sent = tokio::time::timeout_at(deadline, self.outbox.send_packet(&packet, flush)).await;
        let offset = match sent {
            Ok(Ok(offset)) => offset,
            Err(_) => {
                self.pending.remove(id);
                return Err(CallError::Failed(Error::timeout(method, timeout)));
            }
            Ok(Err(err)) => {
                self.pending.remove(id);
                return Err(match err {
                    SendError::Closed => CallError::Unsent,
                    SendError::Encode(err) => CallError::Failed(err.into()),
                });
            }
        };
        let Some(rx) = rx else { return Ok(None) };
        // The answer, or the sweeper's `Timeout` at the deadline, or `LeaderLost` (or a dropped
        // sender) when the connection is gone: then the call was on the wire only if the socket
        // took its first byte before the outbox was sealed.
        match rx.await {
            Ok(Ok(answer)) => Ok(Some(answer)),
            Ok(Err(Error::LeaderLost { .. })) | Err(_) => {
                if self.outbox.sealed_at().is_some_and(|sent| offset >= sent) {
                    Err(CallError::Unsent)
                } else {
                    Err(CallError::Failed(Error::LeaderLost {
                        method: method.to_owned(),
                    }))
                }
            }
            Ok(Err(err)) => Err(CallError::Failed(err)),
        }
    }

    /// Fails calls whose deadline passed: one timer for the connection, set to the earliest deadline.
    pub(super) async fn sweep_loop(self: Arc<Self>) {
        let lost = self.lost.clone();
        let lost = lost.cancelled();
        tokio::pin!(lost);
        loop {
            let wake = self.sweep.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let at = self.sweep_at.load(Ordering::Acquire);
            let until = self.born + Duration::from_nanos(at);
            tokio::select! {
                biased;
                () = &mut lost => return,
                () = &mut wake => continue,
                () = clock::sleep_until(until.into_std()), if at != u64::MAX => {}
            }
            // Reset before the scan: a call tracked from here on lowers it itself, one tracked
            // before is seen by the scan.
            self.sweep_at.store(u64::MAX, Ordering::Release);
            let (expired, next) = self.pending.expire(Instant::now());
            if let Some(next) = next {
                self.sweep_at.fetch_min(self.nanos(next), Ordering::AcqRel);
            }
            for call in expired {
                let _ = call.tx.send(Err(Error::timeout(call.method, call.timeout)));
            }
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Takes an id no pending call holds, and says how many calls are then in flight.
    fn track(&self, call: PendingCall) -> (i64, usize) {
        let at = self.nanos(call.deadline);
        let (id, in_flight) = self.pending.insert(&self.ids, call);
        // Most calls are due after the earliest pending one: a load, and no write to a line that
        // every caller shares.
        if at < self.sweep_at.load(Ordering::Acquire)
            && self.sweep_at.fetch_min(at, Ordering::AcqRel) > at
        {
            self.sweep.notify_one();
        }
        (id, in_flight)
    }
}
