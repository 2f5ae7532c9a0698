//! The fixed 24-byte packet header (DESIGN §5). All integers are big-endian.

use bytes::{Buf, BufMut};

use super::ProtocolError;

/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 24;

/// The only protocol version there is: byte 0 of every header.
pub const VERSION: u8 = 1;

/// Whether a packet asks (request) or answers (response): byte 1 of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `0`: a request. Subscription pushes from the leader are requests too.
    Request,
    /// `1`: a response; it reuses its request's id.
    Response,
}

impl Kind {
    /// The byte this kind is written as.
    pub const fn as_byte(self) -> u8 {
        match self {
            Kind::Request => 0,
            Kind::Response => 1,
        }
    }

    /// Reads a kind byte; anything but 0 or 1 is an error.
    pub const fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            0 => Ok(Kind::Request),
            1 => Ok(Kind::Response),
            found => Err(ProtocolError::BadKind { found }),
        }
    }
}

/// Every field of the 24-byte header, decoded and validated.
///
/// ```
/// use cluster_client::protocol::{Header, Kind, HEADER_LEN};
///
/// let header = Header { kind: Kind::Request, reserved: 0, id: 7, timeout: 3000, conn_len: 20, app_len: 0 };
/// let mut buf = Vec::new();
/// header.write(&mut buf);
/// assert_eq!(buf.len(), HEADER_LEN);
/// assert_eq!(Header::parse(&buf).unwrap(), header);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Byte 1: request or response.
    pub kind: Kind,
    /// Bytes 2–3: reserved, written as 0 and kept as read.
    pub reserved: u16,
    /// Bytes 4–11: the request id (signed 64-bit); a response reuses its request's.
    pub id: i64,
    /// Bytes 12–15: the sender's timeout in milliseconds (signed 32-bit).
    pub timeout: i32,
    /// Bytes 16–19: length of the JSON connection object (signed on the wire, never negative here).
    pub conn_len: u32,
    /// Bytes 20–23: length of the application object (signed on the wire, never negative here).
    pub app_len: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes`.
    ///
    /// Fails on a short slice, a version byte other than [`VERSION`], a kind byte other than 0 or 1,
    /// and a negative length. It never allocates.
    pub fn parse(mut bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() < HEADER_LEN {
            return Err(ProtocolError::ShortHeader { len: bytes.len() });
        }
        let version = bytes.get_u8();
        if version != VERSION {
            return Err(ProtocolError::BadVersion {
                found: version,
                expected: VERSION,
            });
        }
        let kind = Kind::from_byte(bytes.get_u8())?;
        let reserved = bytes.get_u16();
        let id = bytes.get_i64();
        let timeout = bytes.get_i32();
        let conn_len = non_negative("connection object", bytes.get_i32())?;
        let app_len = non_negative("application object", bytes.get_i32())?;
        Ok(Header {
            kind,
            reserved,
            id,
            timeout,
            conn_len,
            app_len,
        })
    }

    /// Appends the 24 header bytes to `out`.
    pub fn write(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(self.kind.as_byte());
        out.put_u16(self.reserved);
        out.put_i64(self.id);
        out.put_i32(self.timeout);
        out.put_u32(self.conn_len);
        out.put_u32(self.app_len);
    }

    /// Length of the whole frame this header announces: header, connection and application object.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.conn_len) + u64::from(self.app_len)
    }
}

fn non_negative(field: &'static str, value: i32) -> Result<u32, ProtocolError> {
    u32::try_from(value).map_err(|_| ProtocolError::NegativeLength { field, value })
}
