//! The port server: accepts sockets on the leader's port and routes each by its `register_channel`
//! to that channel's leader in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::leader::{LeaderChannel, Registration};
use crate::options::Options;
use crate::protocol::{ConnObject, FrameCodec, Packet};
use crate::transport::{self, WriteHalf};
use crate::writer;

/// The state of one channel on the port.
#[derive(Clone)]
pub(crate) enum Slot {
    /// Its real client is being built; registrations wait.
    Starting,
    /// Serving.
    Ready(Arc<LeaderChannel>),
    /// Its real client failed to start; registrations are refused with this message.
    Failed(String),
}

/// Connections past the cap answered with a refusal at once; more are closed unanswered.
const REFUSALS: usize = 16;

/// How long to pause after a failed `accept` (for example, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The largest first frame (`register_channel`, a few hundred bytes) of a connection: a peer that has
/// not registered cannot make the leader buffer a whole `max_frame_size` frame.
const REGISTER_MAX_FRAME: usize = 64 * 1024;

/// One listening port and the channels this process leads on it.
pub(crate) struct PortServer {
    port: u16,
    channels: Mutex<HashMap<String, watch::Sender<Slot>>>,
    stop: CancellationToken,
    limits: Limits,
}

#[derive(Clone)]
struct Limits {
    max_frame_size: usize,
    register_timeout: Duration,
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// Connections past the cap that are being told so.
    refusals: Arc<Semaphore>,
}

impl PortServer {
    /// Starts serving `listener`; the limits come from the options of the first channel.
    pub(crate) fn start(listener: TcpListener, port: u16, options: &Options) -> Arc<Self> {
        let server = Arc::new(PortServer {
            port,
            channels: Mutex::default(),
            stop: CancellationToken::new(),
            limits: Limits {
                max_frame_size: options.max_frame_size,
                register_timeout: options.register_timeout,
                connections: Arc::new(Semaphore::new(options.max_connections)),
                max_connections: options.max_connections,
                refusals: Arc::new(Semaphore::new(REFUSALS)),
            },
        });
        tokio::spawn(Arc::clone(&server).accept_loop(listener));
        server
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<Slot>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `channel` for a leader of this process; `None` if one already has it.
    pub(crate) fn add_channel(&self, channel: &str) -> Option<watch::Sender<Slot>> {
        let mut channels = self.channels();
        if channels.contains_key(channel) {
            return None;
        }
        let (tx, _) = watch::channel(Slot::Starting);
        channels.insert(channel.to_owned(), tx.clone());
        Some(tx)
    }

    /// Removes `channel`; returns whether no channel is left (the port is then released).
    pub(crate) fn remove_channel(&self, channel: &str) -> bool {
        let mut channels = self.channels();
        channels.remove(channel);
        let empty = channels.is_empty();
        if empty {
            self.stop.cancel();
        }
        empty
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server stopped listening.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        tracing::debug!(port = self.port, "leading the port");
        loop {
            let accepted = tokio::select! {
                () = self.stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    if let Ok(permit) = Arc::clone(&self.limits.connections).try_acquire_owned() {
                        tokio::spawn(Arc::clone(&self).handshake(socket, permit, false));
                    } else if let Ok(permit) = Arc::clone(&self.limits.refusals).try_acquire_owned()
                    {
                        tracing::warn!(port = self.port, %peer, limit = self.limits.max_connections, "connection cap reached; refusing a new connection");
                        tokio::spawn(Arc::clone(&self).handshake(socket, permit, true));
                    } else {
                        tracing::warn!(port = self.port, %peer, limit = self.limits.max_connections, "connection cap reached; closing a new connection");
                    }
                }
                Err(err) => {
                    tracing::warn!(port = self.port, error = %err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        tracing::debug!(port = self.port, "released the port");
    }

    /// Reads the first packet of a connection and hands the socket to its channel's leader; a
    /// connection `over_cap` gets a `too_many_connections` refusal instead.
    async fn handshake(
        self: Arc<Self>,
        socket: TcpStream,
        permit: OwnedSemaphorePermit,
        over_cap: bool,
    ) {
        let (read, mut write) = transport::split_tcp(socket);
        let max_frame_size = self.limits.max_frame_size;
        let mut reader = transport::reader(read, max_frame_size.min(REGISTER_MAX_FRAME));
        let first = tokio::select! {
            () = self.stop.cancelled() => return,
            first = tokio::time::timeout(self.limits.register_timeout, reader.next()) => first,
        };
        let packet = match first {
            Err(_) => {
                return tracing::warn!(port = self.port, timeout = ?self.limits.register_timeout, "closing a connection that did not register in time");
            }
            Ok(None) => return,
            Ok(Some(Err(err))) => {
                return tracing::warn!(port = self.port, error = %err, "closing a connection: bad first frame");
            }
            Ok(Some(Ok(packet))) => packet,
        };
        let Some((channel_name, registration)) = Registration::from_packet(packet, permit) else {
            return tracing::warn!(
                port = self.port,
                "closing a connection whose first packet is not a register_channel request"
            );
        };
        if over_cap {
            let limit = self.limits.max_connections;
            let message = format!("the leader serves {limit} connections already");
            return refuse(&mut write, &registration, "too_many_connections", message).await;
        }
        // Registered: the whole frame limit applies from here on (bytes already read are kept).
        let reader = reader.map_decoder(|_| FrameCodec::new(max_frame_size));
        let slot = self
            .channels()
            .get(&channel_name)
            .map(watch::Sender::subscribe);
        let Some(mut slot) = slot else {
            tracing::debug!(port = self.port, channel = %channel_name, "no leader of this channel here");
            return refuse(
                &mut write,
                &registration,
                "unknown_channel",
                format!("no leader of channel `{channel_name}` on this port"),
            )
            .await;
        };
        let ready = tokio::select! {
            () = self.stop.cancelled() => return,
            ready = slot.wait_for(|s| !matches!(s, Slot::Starting)) => ready.map(|s| s.clone()),
        };
        match ready {
            Ok(Slot::Ready(channel)) => channel.serve(reader, write, registration),
            Ok(Slot::Failed(message)) => {
                refuse(&mut write, &registration, "factory_failed", message).await
            }
            Ok(Slot::Starting) | Err(_) => {
                refuse(
                    &mut write,
                    &registration,
                    "unknown_channel",
                    format!("the leader of `{channel_name}` stopped"),
                )
                .await;
            }
        }
    }
}

/// Answers a registration with a refusal, then closes the connection.
async fn refuse(write: &mut WriteHalf, registration: &Registration, code: &str, message: String) {
    let conn = ConnObject::RegisterChannelRes {
        success: Some(false),
        epoch: None,
        code: Some(code.to_owned()),
        error: Some(message),
        push_ack: None,
    };
    if let Ok(frame) = writer::encode(&Packet::response(
        registration.id,
        registration.timeout,
        conn,
        Bytes::new(),
    )) {
        let _ = write.write_all(&frame).await;
    }
    let _ = write.shutdown().await;
}
