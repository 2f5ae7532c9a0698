//! The leader's side of the proof of the cluster secret, before a registration reaches its channel:
//! it answers the follower's nonce with its own nonce and proof, then checks the follower's proof.

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{PortServer, Registration, refuse};
use crate::auth::Secret;
use crate::io::transport::{PacketReader, WriteHalf};
use crate::io::writer;
use crate::protocol::conn::{RegisterChannel, RegisterChannelRes};
use crate::protocol::proof::{self, Nonce, Nonces, Side};
use crate::protocol::{ConnObject, Kind, Packet, RefusalCode};

impl PortServer {
    /// Challenges a registration on `channel`; `true` when the follower proved the secret. A
    /// refusal is answered with its code and logged here.
    pub(super) async fn challenge(
        &self,
        reader: &mut PacketReader,
        write: &mut WriteHalf,
        registration: &Registration,
        channel: &str,
        secret: &Secret,
    ) -> bool {
        let Some(theirs) = registration.nonce.as_deref().and_then(Nonce::from_hex) else {
            self.refuse_auth(
                write,
                registration,
                RefusalCode::AuthRequired,
                "this leader admits only processes that prove the cluster secret: turn auth on in \
                 the follower, or off in every process of the channel",
            )
            .await;
            return false;
        };
        let ours = match Nonce::fresh() {
            Ok(nonce) => nonce,
            Err(err) => {
                tracing::error!(endpoint = %self.endpoint, error = %err, "no nonce for a registration");
                return false;
            }
        };
        let nonces = Nonces {
            leader: ours,
            follower: theirs,
        };
        let challenge = ConnObject::RegisterChannelRes(RegisterChannelRes {
            nonce: Some(ours.to_hex()),
            proof: Some(proof::prove(
                secret.as_bytes(),
                Side::Leader,
                channel,
                nonces,
            )),
            ..RegisterChannelRes::default()
        });
        let sent = match writer::encode(&Packet::response(
            registration.id,
            registration.timeout,
            challenge,
            Bytes::new(),
        )) {
            Ok(frame) => write.write_all(&frame).await.is_ok(),
            Err(_) => false,
        };
        if !sent {
            return false;
        }
        let answer = tokio::select! {
            () = self.stop.cancelled() => return false,
            answer = tokio::time::timeout(self.limits.register_timeout, reader.next()) => answer,
        };
        let proven = match answer {
            Ok(Some(Ok(Packet {
                kind: Kind::Request,
                conn:
                    ConnObject::RegisterChannel(RegisterChannel {
                        proof: Some(theirs),
                        ..
                    }),
                ..
            }))) => proof::check(secret.as_bytes(), Side::Follower, channel, nonces, &theirs),
            _ => false,
        };
        if !proven {
            self.refuse_auth(
                write,
                registration,
                RefusalCode::AuthFailed,
                "the follower could not prove the cluster secret: it holds another one",
            )
            .await;
        }
        proven
    }

    async fn refuse_auth(
        &self,
        write: &mut WriteHalf,
        registration: &Registration,
        code: RefusalCode,
        message: &str,
    ) {
        if let Some(left_out) = self.warnings.admit() {
            tracing::warn!(
                endpoint = %self.endpoint,
                pid = registration.pid,
                code = code.as_str(),
                left_out,
                "refusing a process that did not prove the cluster secret"
            );
        }
        refuse(write, registration, code, message.to_owned()).await;
    }
}
