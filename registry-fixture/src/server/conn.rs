//! One accepted connection: a reader that serves requests in order, a writer task that drains
//! the connection's bounded queue.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Notify, mpsc};

use super::Shared;
use super::state::ConnId;
use crate::io::{LineReader, write_loop};
use crate::protocol::{MAX_LINE_LEN, Op, ParseError, Request, error_line, ok_line};

/// Capacity of a connection's outgoing queue, in lines. A watcher whose queue is full when an
/// update is pushed is closed.
pub(super) const OUT_QUEUE: usize = 256;

/// Serves one connection until the peer closes it, sends garbage, is too slow, or the server
/// shuts down.
pub(super) async fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "registry: cannot set TCP_NODELAY");
    }
    let (read, write) = stream.into_split();
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    let close = Arc::new(Notify::new());
    let id = {
        let mut state = shared.state();
        let Some(id) = state.open_conn(out.clone(), Arc::clone(&close)) else {
            return; // The server is shutting down: dropping the socket closes it.
        };
        shared.live.send_replace(state.live_connections());
        id
    };
    let mut writer = tokio::spawn(write_loop(write, queue));

    let reason = tokio::select! {
        reason = read_loop(&shared, id, read, &out) => reason,
        () = close.notified() => "closed by the server".to_owned(),
        result = &mut writer => match result {
            Ok(Err(err)) => format!("write failed: {err}"),
            _ => "writer stopped".to_owned(),
        },
    };
    tracing::debug!(?peer, conn = id, %reason, "registry: connection closed");

    {
        let mut state = shared.state();
        state.close_conn(id);
        shared.live.send_replace(state.live_connections());
    }
    writer.abort();
}

/// Reads and serves requests; returns why it stopped.
async fn read_loop(
    shared: &Shared,
    id: ConnId,
    read: OwnedReadHalf,
    out: &mpsc::Sender<Vec<u8>>,
) -> String {
    let mut lines = LineReader::new(read, MAX_LINE_LEN);
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return "end of stream".to_owned(),
            Err(err) => {
                tracing::warn!(conn = id, %err, "registry: closing connection");
                return err.to_string();
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = match Request::parse(line) {
            Ok(request) => handle(shared, id, request),
            Err(ParseError::BadRequest {
                id: request_id,
                message,
            }) => Answer::Line(error_line(request_id, &message)),
            Err(err @ ParseError::Malformed(_)) => {
                tracing::warn!(conn = id, %err, "registry: closing connection");
                return err.to_string();
            }
        };
        match answer {
            Answer::Line(line) => {
                // Waiting here is the back-pressure on a client that does not read its answers.
                if out.send(line).await.is_err() {
                    return "writer stopped".to_owned();
                }
            }
            Answer::Queued => {}
            Answer::Close => return "outgoing queue full".to_owned(),
        }
    }
}

/// What serving one request leaves to do.
enum Answer {
    /// Queue this line (waiting for room).
    Line(Vec<u8>),
    /// The answer is already queued.
    Queued,
    /// The connection's queue is full: close it.
    Close,
}

/// Serves one request.
fn handle(shared: &Shared, conn: ConnId, request: Request) -> Answer {
    let id = request.id;
    match request.op {
        Op::Lookup { service } => Answer::Line(ok_line(id, &shared.state().lookup(&service))),
        Op::Register { service, endpoint } => {
            shared.state().register(&service, endpoint);
            Answer::Line(ok_line(id, &()))
        }
        Op::Deregister { service, endpoint } => {
            shared.state().deregister(&service, &endpoint);
            Answer::Line(ok_line(id, &()))
        }
        Op::Watch { service } => {
            // The ack and the current value are queued under the lock, ahead of any later change.
            if shared.state().watch(conn, &service, id) {
                Answer::Queued
            } else {
                Answer::Close
            }
        }
        Op::Unwatch { service } => {
            shared.state().unwatch(conn, &service);
            Answer::Line(ok_line(id, &()))
        }
        Op::Stats => Answer::Line(ok_line(id, &shared.state().stats())),
        Op::Echo { payload } => Answer::Line(ok_line(id, &payload)),
    }
}
