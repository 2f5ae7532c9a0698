//! A per-thread buffer for the short-lived values of a call: its encoded arguments and its encoded
//! result, which live only until they are copied into a frame.
//!
//! Each value is split off the shared buffer, so one allocation serves many calls; once every value
//! split off it is dropped, the buffer is reused in place. Values that are kept (a publish to
//! repeat, a subscription's latest item) are encoded into their own buffers instead: split off
//! this one, they would keep all of it alive.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Bytes the buffer grows by when it runs low.
const CHUNK: usize = 64 * 1024;

/// Room below which the buffer is topped up before a value is encoded.
const LOW: usize = 8 * 1024;

thread_local! {
    static BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Encodes a short-lived value with `write`, into the thread's buffer. Whatever a failed `write`
/// left behind (the first arguments of a call whose third does not encode) is dropped with it.
pub(crate) fn encode<E>(write: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<Bytes, E> {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.capacity() - buffer.len() < LOW {
                buffer.reserve(CHUNK);
                // Reclaimed the allocation of an earlier large value: give it back instead.
                if buffer.capacity() > 2 * CHUNK {
                    *buffer = BytesMut::with_capacity(CHUNK);
                }
            }
            if let Err(err) = write(&mut buffer) {
                buffer.clear();
                return Err(err);
            }
            let value = buffer.split().freeze();
            // A large value grew the buffer: leave the allocation to the value alone.
            if buffer.capacity() > CHUNK {
                *buffer = BytesMut::new();
            }
            Ok(value)
        }
        // Encoding from inside an encode (a `Serialize` that makes a call): a buffer of its own.
        Err(_) => {
            let mut own = BytesMut::new();
            write(&mut own)?;
            Ok(own.freeze())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_split_off_one_buffer_and_a_failure_leaves_nothing() {
        let first = encode(|buf| {
            buf.extend_from_slice(b"one");
            Ok::<_, ()>(())
        })
        .unwrap();
        let failed = encode(|buf| {
            buf.extend_from_slice(b"half");
            Err::<(), _>("no")
        });
        let second = encode(|buf| {
            buf.extend_from_slice(b"two");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!((&first[..], &second[..]), (&b"one"[..], &b"two"[..]));
        assert_eq!(failed, Err("no"));
        // Adjacent in one allocation: the second value starts where the first ends.
        assert_eq!(first.as_ptr().wrapping_add(3), second.as_ptr());
    }

    fn spare() -> usize {
        BUFFER.with(|cell| {
            let buffer = cell.borrow();
            buffer.capacity() - buffer.len()
        })
    }

    #[test]
    fn a_large_value_does_not_stay_in_the_buffer() {
        let large = encode(|buf| {
            buf.extend_from_slice(&vec![1; 4 * CHUNK]);
            Ok::<_, ()>(())
        })
        .unwrap();
        assert!(spare() <= CHUNK, "after a large value: {}", spare());
        drop(large);
        let small = encode(|buf| {
            buf.extend_from_slice(b"small");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(&small[..], b"small");
        assert!(spare() <= 2 * CHUNK, "after the next value: {}", spare());
    }

    #[test]
    fn an_encode_inside_an_encode_gets_its_own_buffer() {
        let outer = encode(|buf| {
            let inner = encode(|inner| {
                inner.extend_from_slice(b"inner");
                Ok::<_, ()>(())
            })?;
            buf.extend_from_slice(&inner);
            buf.extend_from_slice(b"+outer");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(&outer[..], b"inner+outer");
    }
}
