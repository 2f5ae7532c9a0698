//! The inspect connection: a process of the same user ([`inspect`](crate::inspect)) registers on
//! the reserved channel [`INSPECT_CHANNEL`], proves the cluster secret like a follower, and asks
//! for the stats of every channel this process leads on the endpoint. It holds a place under the
//! connection cap, is closed when silent for three heartbeat intervals, and serves nothing else.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{PortServer, Registration, Slot};
use crate::io::transport::{FrameReader, WriteHalf};
use crate::io::writer;
use crate::protocol::conn::{
    ChannelStats, ChannelStatsRes, Heartbeat, HeartbeatRes, RegisterChannelRes,
};
use crate::protocol::{ConnObject, Kind, Packet};
use crate::stats::Stats;

/// The channel name an inspecting process registers on; no channel can take it.
pub(crate) const INSPECT_CHANNEL: &str = "$$cluster-client$$inspect";

impl PortServer {
    /// Serves an inspect connection until it goes silent, sends anything but `stats` and
    /// heartbeats, or this server stops.
    pub(super) async fn serve_inspect(
        &self,
        mut reader: FrameReader,
        mut write: WriteHalf,
        registration: Registration,
        idle: Duration,
    ) {
        let accepted = ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(true),
            epoch: Some(0),
            push_ack: Some(false),
            leader_pid: Some(std::process::id()),
            ..RegisterChannelRes::default()
        });
        let mut answer = Packet::response(
            registration.id,
            registration.timeout,
            accepted,
            Bytes::new(),
        );
        loop {
            let Ok(frame) = writer::encode(&answer) else {
                return;
            };
            let written = tokio::time::timeout(idle, write.write_all(&frame)).await;
            if !matches!(written, Ok(Ok(()))) {
                return;
            }
            let next = tokio::select! {
                () = self.stop.cancelled() => return,
                next = tokio::time::timeout(idle, reader.next()) => next,
            };
            let Ok(Some(Ok(frame))) = next else {
                return;
            };
            let Ok(packet) = frame.into_packet() else {
                return;
            };
            let (conn, app) = match (packet.kind, packet.conn) {
                (Kind::Request, ConnObject::ChannelStats(ChannelStats {})) => (
                    ConnObject::ChannelStatsRes(ChannelStatsRes {}),
                    Bytes::from(serde_json::to_vec(&self.all_stats()).unwrap_or_default()),
                ),
                (Kind::Request, ConnObject::Heartbeat(Heartbeat {})) => {
                    (ConnObject::HeartbeatRes(HeartbeatRes {}), Bytes::new())
                }
                (_, other) => {
                    tracing::debug!(endpoint = %self.endpoint, kind = other.type_name(), "closing an inspect connection: not a stats request");
                    return;
                }
            };
            answer = Packet::response(packet.id, packet.timeout, conn, app);
        }
    }

    /// The stats of every channel this process leads here, by name.
    fn all_stats(&self) -> Vec<Stats> {
        let serving: Vec<_> = self
            .channels()
            .values()
            .filter_map(|slot| match &*slot.borrow() {
                Slot::Ready(leader) => Some(std::sync::Arc::clone(leader)),
                Slot::Starting | Slot::Failed(_) => None,
            })
            .collect();
        let mut all: Vec<Stats> = serving.iter().map(|leader| leader.stats()).collect();
        all.sort_by(|a, b| a.channel.cmp(&b.channel));
        all
    }
}
