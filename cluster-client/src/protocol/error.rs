//! Everything that can be wrong with bytes on the wire.

use std::str::Utf8Error;

/// A frame that cannot be decoded. Each variant names the offending value and, where one applies, the
/// limit it broke. A connection that produced one is closed; nothing in decoding panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Fewer than 24 bytes were given to [`Header::parse`](super::Header::parse).
    #[error("a header needs 24 bytes, got {len}")]
    ShortHeader {
        /// How many bytes there were.
        len: usize,
    },
    /// Byte 0 is not the protocol version.
    #[error("unsupported protocol version {found} (expected {expected})")]
    BadVersion {
        /// The version byte read.
        found: u8,
        /// The version this crate speaks.
        expected: u8,
    },
    /// Byte 1 is neither 0 (request) nor 1 (response).
    #[error("packet kind byte {found} is neither 0 (request) nor 1 (response)")]
    BadKind {
        /// The kind byte read.
        found: u8,
    },
    /// A length field of the header is negative.
    #[error("negative {field} length {value}")]
    NegativeLength {
        /// Which length: "connection object" or "application object".
        field: &'static str,
        /// The value read.
        value: i32,
    },
    /// The header announces a frame larger than the configured maximum; nothing was allocated for it.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The announced frame size, header included.
        size: u64,
        /// The configured `max_frame_size`.
        limit: usize,
    },
    /// A frame large enough to count against the bytes a member buffers for all its peers did not
    /// fit in what is left of them; the connection is closed, the others are served on.
    #[error(
        "a frame of {size} bytes does not fit in the {limit} bytes buffered for all connections"
    )]
    OverBudget {
        /// The frame's size, header included.
        size: usize,
        /// The configured `max_buffered_bytes`.
        limit: usize,
    },
    /// A whole frame given to [`Packet::decode`](super::Packet::decode) is not as long as its header says.
    #[error("header announces a {announced}-byte frame but {actual} bytes were given")]
    FrameLength {
        /// The length the header announces.
        announced: u64,
        /// The length given.
        actual: usize,
    },
    /// The connection object is not UTF-8.
    #[error("connection object is not UTF-8: {source}")]
    ConnObjectUtf8 {
        /// Where decoding stopped.
        #[source]
        source: Utf8Error,
    },
    /// The connection object is not the JSON of a known packet type.
    #[error("connection object is not valid JSON for its type: {message}")]
    ConnObjectJson {
        /// What serde_json reported, cut to 256 characters (it may quote the peer's text).
        message: String,
    },
    /// The connection object's `type` is not one this crate knows.
    #[error("unknown connection object type {found:?}")]
    UnknownType {
        /// The `type` value found (cut to 64 characters).
        found: String,
    },
    /// The connection object could not be written as JSON.
    #[error("connection object could not be encoded: {source}")]
    ConnObjectEncode {
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// An argument's length prefix runs past the end of the application object.
    #[error("argument {index} declares {declared} bytes but only {remaining} remain")]
    ArgsOverrun {
        /// Zero-based argument index.
        index: u32,
        /// The length it declares (or 4 for a cut length prefix).
        declared: u64,
        /// Bytes left in the application object.
        remaining: usize,
    },
    /// More arguments were asked for than the packet declares.
    #[error("argument {index} asked for, but the packet declares {count}")]
    ArgsMissing {
        /// Zero-based index asked for.
        index: u32,
        /// The declared argument count.
        count: u32,
    },
    /// Fewer arguments were read than the packet declares.
    #[error("the packet declares {count} arguments but the method takes {read}")]
    ArgsUnread {
        /// How many were read.
        read: u32,
        /// The declared argument count.
        count: u32,
    },
    /// The application object holds bytes after the declared arguments.
    #[error("{extra} bytes follow the {count} declared arguments")]
    ArgsTrailing {
        /// The declared argument count.
        count: u32,
        /// How many bytes are left over.
        extra: usize,
    },
    /// An encoded frame would not fit the header's signed 32-bit length fields.
    #[error("{field} of {len} bytes does not fit a frame")]
    TooLongToEncode {
        /// Which part.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The socket failed while reading or writing a frame.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
