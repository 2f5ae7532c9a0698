//! A whole packet: header fields, connection object and application object.

use bytes::{BufMut, Bytes, BytesMut};

use super::{ConnObject, HEADER_LEN, Header, Kind, ProtocolError};

/// One packet of the wire protocol.
///
/// ```
/// use bytes::BytesMut;
/// use cluster_client::protocol::conn::Heartbeat;
/// use cluster_client::protocol::{ConnObject, Packet};
///
/// let ping = Packet::request(9, 3000, ConnObject::Heartbeat(Heartbeat {}), Default::default());
/// let mut buf = BytesMut::new();
/// ping.encode(&mut buf).unwrap();
/// assert_eq!(Packet::decode(buf.freeze()).unwrap(), ping);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Request or response.
    pub kind: Kind,
    /// Header bytes 2–3, kept as read (0 when written by this crate).
    pub reserved: u16,
    /// The request id; a response reuses its request's.
    pub id: i64,
    /// The sender's timeout in milliseconds.
    pub timeout: i32,
    /// The connection object.
    pub conn: ConnObject,
    /// The application object: encoded values, or the argument framing of an invoke.
    pub app: Bytes,
}

impl Packet {
    /// A request packet.
    pub fn request(id: i64, timeout: i32, conn: ConnObject, app: Bytes) -> Self {
        Packet {
            kind: Kind::Request,
            reserved: 0,
            id,
            timeout,
            conn,
            app,
        }
    }

    /// A response packet.
    pub fn response(id: i64, timeout: i32, conn: ConnObject, app: Bytes) -> Self {
        Packet {
            kind: Kind::Response,
            ..Packet::request(id, timeout, conn, app)
        }
    }

    /// Appends the encoded packet to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let start = out.len();
        out.reserve(HEADER_LEN + 64 + self.app.len());
        out.put_bytes(0, HEADER_LEN);
        if !super::fast::write(&self.conn, out) {
            if let Err(source) = serde_json::to_writer(out.writer(), &self.conn) {
                out.truncate(start);
                return Err(ProtocolError::ConnObjectEncode { source });
            }
        }
        let conn_len = out.len() - start - HEADER_LEN;
        out.extend_from_slice(&self.app);
        let header = Header {
            kind: self.kind,
            reserved: self.reserved,
            id: self.id,
            timeout: self.timeout,
            conn_len: frame_field("connection object", conn_len)
                .inspect_err(|_| out.truncate(start))?,
            app_len: frame_field("application object", self.app.len())
                .inspect_err(|_| out.truncate(start))?,
        };
        header.write(&mut &mut out[start..start + HEADER_LEN]);
        Ok(())
    }

    /// Decodes one whole frame (header included, nothing after it), without copying the application
    /// object. The frame codec ([`PacketCodec`](super::PacketCodec)) checks the size limit first.
    pub fn decode(frame: Bytes) -> Result<Self, ProtocolError> {
        let header = Header::parse(&frame)?;
        let size = header.frame_len();
        if size != frame.len() as u64 {
            return Err(ProtocolError::FrameLength {
                announced: size,
                actual: frame.len(),
            });
        }
        Self::from_parts(header, frame)
    }

    /// Builds a packet from a parsed header and its whole frame, whose length the caller checked.
    pub(crate) fn from_parts(header: Header, frame: Bytes) -> Result<Self, ProtocolError> {
        // The caller checked the frame's length against the header, which has both lengths.
        let conn_end = HEADER_LEN + header.conn_len as usize;
        let conn = ConnObject::parse(&frame[HEADER_LEN..conn_end])?;
        Ok(Packet {
            kind: header.kind,
            reserved: header.reserved,
            id: header.id,
            timeout: header.timeout,
            conn,
            app: frame.slice(conn_end..),
        })
    }
}

/// Checks that a length fits the header's signed 32-bit field.
fn frame_field(field: &'static str, len: usize) -> Result<u32, ProtocolError> {
    i32::try_from(len)
        .map(i32::unsigned_abs)
        .map_err(|_| ProtocolError::TooLongToEncode { field, len })
}
