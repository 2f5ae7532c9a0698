//! A follower asks its leader for the channel's [`Stats`]; an inspecting process asks the port's
//! server for every channel's.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::FollowerConn;
use super::calls::CallError;
use crate::error::Error;
use crate::protocol::conn::{ChannelStats, ChannelStatsRes};
use crate::protocol::{ConnObject, FaultCode, Packet};
use crate::role_change::MemberRole;
use crate::stats::Stats;

impl FollowerConn {
    /// The leader's snapshot of the channel, asked for until `deadline` (`timeout` after the
    /// request began). A leader of the Node package keeps none: that fails at once, with
    /// [`FaultCode::UnknownMethod`], rather than waiting for an answer that never comes.
    pub(crate) async fn stats(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Stats, CallError> {
        if self.leader_is_node() {
            return Err(CallError::Failed(Error::Remote {
                name: FaultCode::UnknownMethod,
                message: "the leader is a member of the Node package, which keeps no stats"
                    .to_owned(),
            }));
        }
        let mut stats: Stats = self.ask_stats(deadline, timeout).await?;
        stats.role = MemberRole::Follower;
        Ok(stats)
    }

    /// Every channel's snapshot, from the port server of an inspect connection.
    pub(crate) async fn channel_stats(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<Stats>, CallError> {
        self.ask_stats(deadline, timeout).await
    }

    /// Sends `stats` and reads the JSON of its answer as `T`.
    async fn ask_stats<T: DeserializeOwned>(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let request = ConnObject::ChannelStats(ChannelStats {});
        let answer = self
            .request("stats", request, Bytes::new(), true, deadline, timeout)
            .await?;
        let unexpected = |message: String| {
            CallError::Failed(Error::Remote {
                name: FaultCode::UnexpectedAnswer,
                message,
            })
        };
        match answer {
            Some(Packet {
                conn: ConnObject::ChannelStatsRes(ChannelStatsRes {}),
                app,
                ..
            }) => serde_json::from_slice(&app)
                .map_err(|err| unexpected(format!("the stats do not read: {err}"))),
            Some(other) => Err(unexpected(format!(
                "`stats` answered with {}",
                other.conn.type_name()
            ))),
            None => Err(unexpected("`stats` got no answer".to_owned())),
        }
    }
}
