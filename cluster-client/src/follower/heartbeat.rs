//! Heartbeats: a follower pings its leader every `heartbeat_interval`; a ping unanswered within
//! `response_timeout` counts as a dead leader (the connection is lost, and the handle elects again).

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::FollowerConn;
use crate::io::clock;
use crate::protocol::ConnObject;
use crate::protocol::conn::Heartbeat;

impl FollowerConn {
    /// Pings the leader until the connection is lost; an unanswered ping loses it.
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.lost.cancelled() => return,
                () = clock::sleep(self.options.heartbeat_interval) => {}
            }
            let wait = self.options.response_timeout;
            let ping = self.request(
                "heartbeat",
                ConnObject::Heartbeat(Heartbeat {}),
                Bytes::new(),
                true,
                Instant::now() + wait,
                wait,
            );
            if let Err(err) = ping.await.map_err(|err| err.into_error("heartbeat")) {
                if !self.is_lost() {
                    tracing::warn!(error = %err, "heartbeat unanswered; treating the leader as dead");
                    self.mark_lost();
                }
                return;
            }
        }
    }
}
