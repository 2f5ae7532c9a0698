//! The wire: the original package's packet, byte for byte (DESIGN §5).
//!
//! A packet is a 24-byte big-endian [`Header`], a JSON [`ConnObject`] and an application object of raw
//! bytes; each connection-object `type` is a struct in [`conn`], and the codes it carries are
//! [`RefusalCode`] and [`FaultCode`]. Invoke arguments inside the application object use the [`args`]
//! framing. [`PacketCodec`] reads and writes whole packets on a byte stream and enforces
//! `max_frame_size` before allocating.
//! Request ids and subscription keys follow the original's rules too (the crate's own `ids` and `key`
//! modules). Nothing here does I/O beyond framing, and nothing in decoding panics.

pub mod args;
pub(crate) mod budget;
mod code;
pub mod conn;
mod error;
mod fast;
pub(crate) mod fault_body;
mod frame;
mod header;
pub(crate) mod ids;
mod key;
mod packet;
pub mod proof;
mod register_answer;

pub use code::{FaultCode, RefusalCode};
pub use conn::{ConnObject, RawJson};
pub use error::ProtocolError;
pub(crate) use fast::{push_text, read_invoke};
pub use frame::{DEFAULT_MAX_FRAME_SIZE, PacketCodec};
pub(crate) use frame::{Frame, FrameCodec};
pub use header::{HEADER_LEN, Header, Kind, VERSION};
pub(crate) use key::key_args;
pub use key::subscription_key;
pub use packet::Packet;
pub(crate) use register_answer::{follower_codec, register_answer};
