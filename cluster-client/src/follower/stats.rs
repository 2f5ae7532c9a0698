//! A follower asks its leader for the channel's [`Stats`].

use std::time::Duration;

use bytes::Bytes;
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
    /// request began).
    pub(crate) async fn stats(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Stats, CallError> {
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
            }) => {
                let mut stats: Stats = serde_json::from_slice(&app)
                    .map_err(|err| unexpected(format!("the leader's stats do not read: {err}")))?;
                stats.role = MemberRole::Follower;
                Ok(stats)
            }
            Some(other) => Err(unexpected(format!(
                "`stats` answered with {}",
                other.conn.type_name()
            ))),
            None => Err(unexpected("`stats` got no answer".to_owned())),
        }
    }
}
