//! Joining a leader: connecting to the port and registering on the channel; the answer gives the
//! leader's term, or a refusal the election reads through [`JoinError`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{FollowerConn, millis};
use crate::error::Error;
use crate::io::transport::{self, Endpoint, FrameReader, ReadHalf, WriteHalf};
use crate::io::writer::{self, Flush, Outbox, SendError};
use crate::options::Options;
use crate::protocol::conn::{RegisterChannel, RegisterChannelRes};
use crate::protocol::ids::IdGen;
use crate::protocol::proof::{self, Nonce, Nonces, Side};
use crate::protocol::{ConnObject, Kind, Packet, ProtocolError, RefusalCode};
use crate::role_change::LeaderInfo;
use crate::service::Schema;
use crate::transcode::Transcode;

/// Why joining a leader failed; the election decides what to do about each.
#[derive(Debug)]
pub(crate) enum JoinError {
    /// Nothing listens on the port.
    Unreachable(std::io::Error),
    /// The peer accepted, then closed without answering.
    Closed,
    /// The peer accepted and said nothing within the connect timeout.
    Silent(Duration),
    /// The peer answered with something that is not a `register_channel_res`.
    Garbage(String),
    /// The leader answered and refused.
    Refused(Error),
    /// The peer could not prove the cluster secret: what it did.
    Unproven(String),
}

impl JoinError {
    /// What was found on the port, when something that is no leader of this cluster answered
    /// there; `None` when nothing listens or a leader refused.
    pub(crate) fn found(&self) -> Option<String> {
        match self {
            JoinError::Unreachable(_) | JoinError::Refused(_) => None,
            JoinError::Closed => Some(
                "a process that accepted the connection and closed it without answering register_channel"
                    .to_owned(),
            ),
            JoinError::Silent(wait) => Some(format!(
                "a process that accepted the connection but answered nothing to register_channel within {} ms",
                wait.as_millis()
            )),
            JoinError::Unproven(what) => Some(format!(
                "a process that could not prove the cluster secret: {what}"
            )),
            JoinError::Garbage(what) => Some(format!(
                "a process that does not speak this protocol ({what})"
            )),
        }
    }
}

impl FollowerConn {
    /// Connects to the port and registers on `channel`.
    pub(crate) async fn join(
        options: &Options,
        schema: &'static Schema,
        channel: &str,
    ) -> Result<Arc<Self>, JoinError> {
        let wait = options.connect_timeout;
        match tokio::time::timeout(wait, transport::connect(&Endpoint::of(options))).await {
            Ok(Ok((read, write))) => Self::register(read, write, options, schema, channel).await,
            Ok(Err(err)) => Err(JoinError::Unreachable(err)),
            Err(_) => Err(JoinError::Silent(wait)),
        }
    }

    /// Registers on `channel` over an open connection.
    pub(crate) async fn register(
        read: ReadHalf,
        write: WriteHalf,
        options: &Options,
        schema: &'static Schema,
        channel: &str,
    ) -> Result<Arc<Self>, JoinError> {
        let wait = options.connect_timeout;
        let lost = CancellationToken::new();
        let outbox = writer::spawn(write, lost.clone());
        let mut reader = transport::frame_reader(read, options.max_frame_size);
        let ids = IdGen::default();
        let id = ids.next();
        let secret = options.secret.as_ref();
        let ours = secret
            .map(|_| Nonce::fresh())
            .transpose()
            .map_err(|err| JoinError::Refused(Error::Auth(Arc::new(err.into()))))?;
        let register = RegisterChannel {
            channel_name: channel.to_owned(),
            fingerprint: Some(schema.fingerprint_hex()),
            codec: Some(options.codec.name().to_owned()),
            pid: Some(std::process::id()),
            nonce: ours.map(Nonce::to_hex),
            proof: None,
        };
        send(&outbox, id, wait, register).await?;
        let mut answer = next_answer(&mut reader, wait).await?;
        match (secret.zip(ours), challenge_of(&answer)) {
            (Some((secret, ours)), Some((nonce, proof))) => {
                let nonces = Nonces {
                    leader: Nonce::from_hex(nonce)
                        .ok_or_else(|| JoinError::Unproven("a malformed challenge".into()))?,
                    follower: ours,
                };
                if !proof::check(secret.as_bytes(), Side::Leader, channel, nonces, proof) {
                    return Err(JoinError::Unproven(
                        "its proof is of another secret (a leader that holds another one, or an \
                         impostor)"
                            .into(),
                    ));
                }
                let response = RegisterChannel {
                    channel_name: channel.to_owned(),
                    fingerprint: None,
                    codec: None,
                    pid: None,
                    nonce: None,
                    proof: Some(proof::prove(
                        secret.as_bytes(),
                        Side::Follower,
                        channel,
                        nonces,
                    )),
                };
                send(&outbox, id, wait, response).await?;
                answer = next_answer(&mut reader, wait).await?;
            }
            (None, Some(_)) => {
                return Err(JoinError::Refused(Error::Refused {
                    channel: channel.to_owned(),
                    code: RefusalCode::AuthRequired,
                    message: "the leader asks for a proof of the cluster secret, and this process \
                              has auth off"
                        .to_owned(),
                }));
            }
            (Some(_), None) if accepts(&answer) => {
                return Err(JoinError::Unproven(
                    "it accepted this process without proving the cluster secret".into(),
                ));
            }
            _ => {}
        }
        let accepted = accept_answer(answer, id, channel, schema)?;
        Ok(FollowerConn::start(
            options, accepted, outbox, ids, lost, reader,
        ))
    }
}

/// Sends a `register_channel` request.
async fn send(
    outbox: &Outbox,
    id: i64,
    wait: Duration,
    register: RegisterChannel,
) -> Result<(), JoinError> {
    let register = ConnObject::RegisterChannel(register);
    match outbox
        .send_packet(
            &Packet::request(id, millis(wait), register, Bytes::new()),
            Flush::Now,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(SendError::Closed) => Err(JoinError::Closed),
        Err(SendError::Encode(err)) => Err(JoinError::Refused(err.into())),
    }
}

/// The next packet from the leader, within `wait`.
async fn next_answer(reader: &mut FrameReader, wait: Duration) -> Result<Packet, JoinError> {
    match tokio::time::timeout(wait, reader.next()).await {
        Err(_) => Err(JoinError::Silent(wait)),
        Ok(None) => Err(JoinError::Closed),
        // A peer that closes with our registration unread resets the connection: still a close.
        Ok(Some(Err(ProtocolError::Io(err)))) if is_reset(&err) => Err(JoinError::Closed),
        Ok(Some(Err(err))) => Err(JoinError::Garbage(err.to_string())),
        Ok(Some(Ok(frame))) => frame
            .into_packet()
            .map_err(|err| JoinError::Garbage(err.to_string())),
    }
}

/// The leader's nonce and proof, when `answer` is a challenge rather than a decision.
fn challenge_of(answer: &Packet) -> Option<(&str, &str)> {
    match &answer.conn {
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: None,
            nonce: Some(nonce),
            proof: Some(proof),
            ..
        }) => Some((nonce, proof)),
        _ => None,
    }
}

/// Whether `answer` accepts the registration (anything but a refusal).
fn accepts(answer: &Packet) -> bool {
    matches!(
        &answer.conn,
        ConnObject::RegisterChannelRes(RegisterChannelRes { success, .. }) if *success != Some(false)
    )
}

/// What the leader said when it accepted this process.
pub(super) struct Accepted {
    /// Its term (0 from a leader that does not number its terms).
    pub(super) epoch: u64,
    /// Whether it wants pushes acknowledged.
    pub(super) push_ack: bool,
    /// Who it is.
    pub(super) leader: LeaderInfo,
}

/// Checks the answer to `register_channel`: the epoch, whether pushes want acknowledgements, and
/// who leads.
fn accept_answer(
    answer: Packet,
    id: i64,
    channel: &str,
    schema: &Schema,
) -> Result<Accepted, JoinError> {
    let ConnObject::RegisterChannelRes(RegisterChannelRes {
        success,
        epoch,
        code,
        error,
        push_ack,
        leader_pid,
        leader_since,
        ..
    }) = answer.conn
    else {
        return Err(JoinError::Garbage(format!(
            "answered register_channel with {}",
            answer.conn.type_name()
        )));
    };
    if answer.kind != Kind::Response || answer.id != id {
        return Err(JoinError::Garbage(format!(
            "answered with id {} (expected {id})",
            answer.id
        )));
    }
    if success != Some(false) {
        return Ok(Accepted {
            epoch: epoch.unwrap_or(0),
            push_ack: push_ack.unwrap_or(true),
            leader: LeaderInfo {
                pid: leader_pid,
                since_ms: leader_since,
            },
        });
    }
    let code = code.unwrap_or(RefusalCode::Refused);
    let message = error.unwrap_or_default();
    Err(JoinError::Refused(match code {
        RefusalCode::SchemaMismatch => Error::SchemaMismatch {
            channel: channel.to_owned(),
            ours: schema.fingerprint_hex(),
            theirs: message,
        },
        _ => Error::Refused {
            channel: channel.to_owned(),
            code,
            message,
        },
    }))
}

/// Whether a read failed because the peer closed (or reset) the connection.
fn is_reset(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}
