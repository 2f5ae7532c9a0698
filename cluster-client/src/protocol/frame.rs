//! [`PacketCodec`]: whole packets over a byte stream, for `tokio_util::codec::Framed`; and
//! [`FrameCodec`], the same framing with the connection object left unparsed.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::budget::{Budget, Taken};
use super::{HEADER_LEN, Header, Packet, ProtocolError};

/// The least room the reader keeps when it replaces its buffer for a frame cut short.
const READ_ROOM: usize = 8 * 1024;

/// The most room a drained reader keeps for the next frame; larger frames take a second read.
const LARGEST_ROOM_KEPT: usize = 64 * 1024;

/// The default limit on one frame, header included: 8 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;

/// Decodes and encodes whole [`Packet`]s.
///
/// The size limit is checked from the header before anything is allocated for the body, so a peer
/// cannot make the reader reserve more than `max_frame_size` bytes.
///
/// ```
/// use bytes::BytesMut;
/// use cluster_client::protocol::conn::Heartbeat;
/// use cluster_client::protocol::{ConnObject, Packet, PacketCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = PacketCodec::new(1024);
/// let mut buf = BytesMut::new();
/// codec.encode(Packet::request(1, 3000, Heartbeat {}.into(), Default::default()), &mut buf).unwrap();
/// let packet = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(packet.conn, ConnObject::Heartbeat(Heartbeat {}));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PacketCodec {
    max_frame_size: usize,
    /// The size of the last frame decoded: the room kept for the next one.
    last_frame: usize,
}

impl PacketCodec {
    /// A codec refusing frames larger than `max_frame_size` bytes (header included).
    pub fn new(max_frame_size: usize) -> Self {
        PacketCodec {
            max_frame_size,
            last_frame: 0,
        }
    }

    /// The configured limit.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Before a read into a drained buffer: room for one more frame like the last, and a byte
    /// over, so that such a frame arrives in one read (a frame cut by the end of the buffer takes a
    /// second read; one that fills it exactly, an empty third). Never more than
    /// [`LARGEST_ROOM_KEPT`]: the buffer of a large frame is given back once the frame is read.
    fn keep_room(&self, src: &mut BytesMut) {
        let want = (self.last_frame + 1).min(LARGEST_ROOM_KEPT);
        let fits = |buf: &BytesMut| {
            buf.capacity() - buf.len() >= want && buf.capacity() <= LARGEST_ROOM_KEPT
        };
        if fits(src) || (src.try_reclaim(want) && fits(src)) {
            return;
        }
        // A fresh buffer holds two such frames: the next one is then cut from it with no new
        // buffer, even while the last is still held.
        let wanted = (src.len() + 2 * want).min(LARGEST_ROOM_KEPT.max(src.len() + want));
        move_to_fresh(src, self.fresh_capacity(wanted, src.len()));
    }

    /// The capacity of a replacement buffer: `wanted`, at least a read's worth ([`READ_ROOM`]),
    /// never past the frame limit unless `held` bytes already are.
    fn fresh_capacity(&self, wanted: usize, held: usize) -> usize {
        wanted.max(READ_ROOM).min(self.max_frame_size.max(held))
    }
}

/// Moves what `src` holds into a new buffer of `capacity` bytes (the old one is freed once the
/// frames split off it are).
fn move_to_fresh(src: &mut BytesMut, capacity: usize) {
    let mut fresh = BytesMut::with_capacity(capacity);
    fresh.extend_from_slice(src);
    *src = fresh;
}

impl Default for PacketCodec {
    fn default() -> Self {
        PacketCodec::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl PacketCodec {
    /// Cuts the next whole frame off `src`, checking its size from the header first.
    fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if src.len() < HEADER_LEN {
            self.keep_room(src);
            return Ok(None);
        }
        let header = Header::parse(&src[..HEADER_LEN])?;
        let size = header.frame_len();
        if size > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                size,
                limit: self.max_frame_size,
            });
        }
        // `size` fits in usize: it is at most `max_frame_size`.
        let size = size as usize;
        if src.len() < size {
            // Room for this frame, never past the limit (`BytesMut::reserve` may double the buffer),
            // and at least a read's worth: a buffer of exactly one frame would make the reads after
            // it tiny, several system calls per frame.
            if !src.try_reclaim(size - src.len()) {
                move_to_fresh(src, self.fresh_capacity(size, size));
            }
            return Ok(None);
        }
        self.last_frame = size;
        let bytes = src.split_to(size).freeze();
        Ok(Some(Frame { header, bytes }))
    }
}

impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
        self.decode_frame(src)?.map(Frame::into_packet).transpose()
    }
}

/// One whole frame whose header was parsed and whose length was checked; the connection object is
/// not parsed yet.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The parsed header.
    pub(crate) header: Header,
    /// The whole frame, header included.
    pub(crate) bytes: Bytes,
}

impl Frame {
    /// The connection object's JSON text.
    pub(crate) fn conn_text(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..self.conn_end()]
    }

    /// The application object.
    pub(crate) fn app(&self) -> Bytes {
        self.bytes.slice(self.conn_end()..)
    }

    fn conn_end(&self) -> usize {
        HEADER_LEN + self.header.conn_len as usize
    }

    /// Parses the connection object.
    pub(crate) fn into_packet(self) -> Result<Packet, ProtocolError> {
        Packet::from_parts(self.header, self.bytes)
    }
}

/// Frames below this size do not count against a [`Budget`]: the caps on connections bound them.
const UNCOUNTED: usize = 64 * 1024;

/// The framing of [`PacketCodec`], yielding [`Frame`]s: a reader that recognises a hot frame by its
/// connection object's text need not parse it.
///
/// With a [`Budget`], a large frame takes its size from the budget once its header is in and gives
/// it back once it is whole (or the connection drops); a frame that does not fit is refused with
/// [`ProtocolError::OverBudget`]. The codec also notes when the frame now arriving began, for a
/// reader that sets a deadline on it.
#[derive(Debug)]
pub(crate) struct FrameCodec {
    codec: PacketCodec,
    budget: Option<Budget>,
    /// The budget taken by the frame now arriving.
    held: Option<Taken>,
    /// When the first bytes of the frame now arriving were read.
    partial_since: Option<Instant>,
}

impl FrameCodec {
    /// A codec refusing frames larger than `max_frame_size` bytes (header included).
    pub(crate) fn new(max_frame_size: usize) -> Self {
        FrameCodec {
            codec: PacketCodec::new(max_frame_size),
            budget: None,
            held: None,
            partial_since: None,
        }
    }

    /// The same codec, counting large frames against `budget` while they arrive.
    pub(crate) fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// When the first bytes of a frame not yet whole were read; `None` between frames.
    pub(crate) fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }

    /// Takes the budget of the frame now arriving, once its header is in.
    fn charge(&mut self, src: &BytesMut) -> Result<(), ProtocolError> {
        let Some(budget) = self.budget.as_ref().filter(|_| self.held.is_none()) else {
            return Ok(());
        };
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(());
        };
        // Checked against `max_frame_size` already, so it fits in usize.
        let size = usize::try_from(Header::parse(header)?.frame_len()).unwrap_or(usize::MAX);
        if size >= UNCOUNTED {
            let limit = budget.limit();
            self.held = Some(
                budget
                    .take(size)
                    .ok_or(ProtocolError::OverBudget { size, limit })?,
            );
        }
        Ok(())
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let frame = self.codec.decode_frame(src)?;
        if frame.is_some() || src.is_empty() {
            self.held = None;
            self.partial_since = None;
        } else {
            self.partial_since.get_or_insert_with(Instant::now);
            self.charge(src)?;
        }
        Ok(frame)
    }
}

impl Encoder<Packet> for PacketCodec {
    type Error = ProtocolError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode(&packet, dst)
    }
}

impl Encoder<&Packet> for PacketCodec {
    type Error = ProtocolError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let start = dst.len();
        packet.encode(dst)?;
        let size = dst.len() - start;
        if size > self.max_frame_size {
            dst.truncate(start);
            return Err(ProtocolError::FrameTooLarge {
                size: size as u64,
                limit: self.max_frame_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::ConnObject;
    use crate::protocol::conn::Heartbeat;

    /// One encoded frame of `body` application bytes.
    fn frame(body: usize) -> BytesMut {
        let packet = Packet::request(
            1,
            3000,
            ConnObject::Heartbeat(Heartbeat {}),
            Bytes::from(vec![7; body]),
        );
        let mut out = BytesMut::new();
        packet.encode(&mut out).expect("encodes");
        out
    }

    fn room(buf: &BytesMut) -> usize {
        buf.capacity() - buf.len()
    }

    #[test]
    fn a_drained_buffer_keeps_room_for_a_frame_like_the_last() {
        let mut codec = PacketCodec::default();
        let one = frame(6000);
        let size = one.len();
        // A buffer exactly one frame long, as after a read that filled it.
        let mut buf = BytesMut::with_capacity(size);
        buf.extend_from_slice(&one);

        // The frame is still held (a caller has not read it yet): a fresh buffer.
        let held = codec.decode(&mut buf).expect("decodes").expect("a frame");
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert!(
            room(&buf) > size,
            "room {} for a frame of {size}",
            room(&buf)
        );

        // The fresh buffer holds two such frames: the next two are cut from it even while the one
        // before is still held.
        let at = buf.as_ptr();
        let (base, capacity) = (at as usize, buf.capacity());
        buf.extend_from_slice(&one);
        let second = codec.decode(&mut buf).expect("decodes").expect("a frame");
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        buf.extend_from_slice(&one);
        let third = codec.decode(&mut buf).expect("decodes").expect("a frame");
        assert_eq!(third.app, second.app);
        assert_eq!(
            buf.as_ptr(),
            at.wrapping_add(2 * size),
            "no new buffer for the third frame"
        );
        drop((second, third));
        assert!(codec.decode(&mut buf).expect("no error").is_none());

        // Filled and drained again and again with nothing held: the same buffer throughout, its
        // room reclaimed in place.
        drop(held);
        for _ in 0..4 {
            buf.extend_from_slice(&one);
            drop(codec.decode(&mut buf).expect("decodes").expect("a frame"));
            assert!(codec.decode(&mut buf).expect("no error").is_none());
            assert!(room(&buf) > size);
            let at = buf.as_ptr() as usize;
            assert!(
                (base..base + capacity).contains(&at),
                "reclaimed, not reallocated"
            );
        }
    }

    #[test]
    fn the_buffer_of_a_large_frame_is_given_back() {
        let mut codec = PacketCodec::default();
        let big = frame(1024 * 1024);
        let mut buf = BytesMut::from(&big[..]);
        drop(codec.decode(&mut buf).expect("decodes").expect("a frame"));
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert!(
            buf.capacity() <= LARGEST_ROOM_KEPT && room(&buf) >= READ_ROOM,
            "capacity {} after a frame of {}",
            buf.capacity(),
            big.len()
        );
    }

    #[test]
    fn the_room_kept_never_passes_the_limit() {
        let one = frame(200);
        let mut codec = PacketCodec::new(one.len());
        let mut buf = BytesMut::from(&one[..]);
        let _held = codec.decode(&mut buf).expect("decodes").expect("a frame");
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert!(buf.capacity() <= one.len(), "capacity {}", buf.capacity());
    }
}
