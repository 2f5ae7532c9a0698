//! Joining a leader: connecting to the port and registering on the channel; the answer gives the
//! leader's term, or a refusal the election reads through [`JoinError`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{FollowerConn, millis};
use crate::error::Error;
use crate::io::transport::{self, ReadHalf, WriteHalf};
use crate::io::writer::{self, Flush, SendError};
use crate::options::Options;
use crate::protocol::conn::{RegisterChannel, RegisterChannelRes};
use crate::protocol::ids::IdGen;
use crate::protocol::{ConnObject, Kind, Packet, ProtocolError, RefusalCode};
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
}

impl FollowerConn {
    /// Connects to the port and registers on `channel`.
    pub(crate) async fn join(
        options: &Options,
        schema: &'static Schema,
        channel: &str,
    ) -> Result<Arc<Self>, JoinError> {
        let wait = options.connect_timeout;
        match tokio::time::timeout(wait, transport::connect(options.port)).await {
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
        let register = ConnObject::RegisterChannel(RegisterChannel {
            channel_name: channel.to_owned(),
            fingerprint: Some(schema.fingerprint_hex()),
            codec: Some(options.codec.name().to_owned()),
            pid: Some(std::process::id()),
        });
        let id = ids.next();
        match outbox
            .send_packet(
                &Packet::request(id, millis(wait), register, Bytes::new()),
                Flush::Now,
            )
            .await
        {
            Ok(()) => {}
            Err(SendError::Closed) => return Err(JoinError::Closed),
            Err(SendError::Encode(err)) => return Err(JoinError::Refused(err.into())),
        }
        let answer = match tokio::time::timeout(wait, reader.next()).await {
            Err(_) => return Err(JoinError::Silent(wait)),
            Ok(None) => return Err(JoinError::Closed),
            // A peer that closes with our registration unread resets the connection: still a close.
            Ok(Some(Err(ProtocolError::Io(err)))) if is_reset(&err) => {
                return Err(JoinError::Closed);
            }
            Ok(Some(Err(err))) => return Err(JoinError::Garbage(err.to_string())),
            Ok(Some(Ok(frame))) => frame
                .into_packet()
                .map_err(|err| JoinError::Garbage(err.to_string()))?,
        };
        let (epoch, push_ack) = accept_answer(answer, id, channel, schema)?;
        Ok(FollowerConn::start(
            options, epoch, push_ack, outbox, ids, lost, reader,
        ))
    }
}

/// Checks the answer to `register_channel`: the epoch and whether pushes want acknowledgements.
fn accept_answer(
    answer: Packet,
    id: i64,
    channel: &str,
    schema: &Schema,
) -> Result<(u64, bool), JoinError> {
    let ConnObject::RegisterChannelRes(RegisterChannelRes {
        success,
        epoch,
        code,
        error,
        push_ack,
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
        return Ok((epoch.unwrap_or(0), push_ack.unwrap_or(true)));
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
