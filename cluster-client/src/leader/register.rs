//! A follower's registration: the leader accepts it (with its epoch) or refuses it (a schema or a
//! codec that is not its own).

use super::LeaderChannel;
use super::connection::{Conn, send};
use crate::io::writer::Flush;
use crate::protocol::conn::RegisterChannelRes;
use crate::protocol::{ConnObject, Packet, RefusalCode, register_answer};
use crate::role_change::unix_ms;
use crate::server::Registration;
use crate::transcode::Transcode;

impl LeaderChannel {
    /// Answers the registration: accepted (with the epoch) or refused (with a code). Returns whether
    /// the connection is to be served.
    pub(super) async fn admit(&self, conn: &Conn, reg: &Registration) -> bool {
        let refusal = match (&reg.fingerprint, &reg.codec) {
            (Some(theirs), _) if *theirs != self.schema.fingerprint_hex() => {
                Some((RefusalCode::SchemaMismatch, self.schema.fingerprint_hex()))
            }
            (_, Some(codec)) if codec != Transcode::name(&self.options.codec) => Some((
                RefusalCode::CodecMismatch,
                format!(
                    "the leader uses {}, the follower {codec}",
                    self.options.codec
                ),
            )),
            _ => None,
        };
        let conn_object = ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(refusal.is_none()),
            epoch: Some(self.epoch()),
            code: refusal.as_ref().map(|(code, _)| code.clone()),
            error: refusal.as_ref().map(|(_, message)| message.clone()),
            push_ack: Some(false),
            nonce: None,
            proof: None,
            leader_pid: Some(std::process::id()),
            leader_since: Some(unix_ms(self.since)),
        });
        if let Some((code, message)) = &refusal {
            if let Some(left_out) = self.warnings.admit() {
                tracing::warn!(channel = %self.name, pid = reg.pid, code = code.as_str(), message, left_out, "refusing a follower");
            }
        } else {
            tracing::debug!(channel = %self.name, pid = reg.pid, conn = conn.id, "follower registered");
        }
        let app = register_answer(
            self.options.codec,
            refusal
                .as_ref()
                .map(|(code, message)| (code, message.as_str())),
        );
        let answer = Packet::response(reg.id, reg.timeout, conn_object, app);
        let sent = send(&conn.outbox, &answer, Flush::Now);
        sent && refusal.is_none()
    }
}
