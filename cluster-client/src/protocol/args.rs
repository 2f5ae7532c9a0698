//! The invoke-argument framing: for each argument, a big-endian u32 byte length, then its bytes.
//!
//! With no arguments there is no application object at all.
//!
//! ```
//! use bytes::BytesMut;
//! use cluster_client::protocol::args::{push_arg, Args};
//!
//! let mut app = BytesMut::new();
//! push_arg(&mut app, b"first");
//! push_arg(&mut app, b"");
//! let mut args = Args::new(app.freeze(), 2);
//! assert_eq!(&args.next_arg().unwrap()[..], b"first");
//! assert_eq!(&args.next_arg().unwrap()[..], b"");
//! args.finish().unwrap();
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::ProtocolError;

/// Length of an argument's prefix.
const PREFIX: usize = 4;

/// Appends one argument given as bytes.
pub fn push_arg(out: &mut BytesMut, arg: &[u8]) {
    out.reserve(PREFIX + arg.len());
    out.put_u32(arg.len() as u32);
    out.extend_from_slice(arg);
}

/// Appends one argument that `write` encodes straight into `out`, then fills in its length prefix.
///
/// On error `out` is left as it was.
pub fn push_arg_with<E>(
    out: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.put_u32(0);
    if let Err(e) = write(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = (out.len() - start - PREFIX) as u32;
    out[start..start + PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Reads the arguments of an invoke's application object, each as a zero-copy slice.
#[derive(Debug, Clone)]
pub struct Args {
    rest: Bytes,
    index: u32,
    count: u32,
    /// Set by an overrun: (index, declared, remaining), reported again by every later call.
    broken: Option<(u32, u64, usize)>,
}

impl Args {
    /// Reads `count` arguments (the connection object's `argLength`) from `app`.
    pub fn new(app: Bytes, count: u32) -> Self {
        Args {
            rest: app,
            index: 0,
            count,
            broken: None,
        }
    }

    /// How many arguments were declared.
    pub fn declared(&self) -> u32 {
        self.count
    }

    /// The framed arguments not read yet (all of them before the first `next_arg`).
    pub(crate) fn unread(&self) -> &Bytes {
        &self.rest
    }

    /// The next argument; an error if all declared arguments were read or the framing overruns.
    pub fn next_arg(&mut self) -> Result<Bytes, ProtocolError> {
        if let Some((index, declared, remaining)) = self.broken {
            return Err(ProtocolError::ArgsOverrun {
                index,
                declared,
                remaining,
            });
        }
        if self.index >= self.count {
            return Err(ProtocolError::ArgsMissing {
                index: self.index,
                count: self.count,
            });
        }
        let remaining = self.rest.len();
        if remaining < PREFIX {
            return Err(self.overrun(PREFIX as u64, remaining));
        }
        let declared = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]);
        if declared as usize > remaining - PREFIX {
            return Err(self.overrun(u64::from(declared), remaining - PREFIX));
        }
        self.rest.advance(PREFIX);
        self.index += 1;
        Ok(self.rest.split_to(declared as usize))
    }

    /// Checks that every declared argument was read and nothing follows them.
    pub fn finish(self) -> Result<(), ProtocolError> {
        if let Some((index, declared, remaining)) = self.broken {
            return Err(ProtocolError::ArgsOverrun {
                index,
                declared,
                remaining,
            });
        }
        if self.index < self.count {
            return Err(ProtocolError::ArgsUnread {
                read: self.index,
                count: self.count,
            });
        }
        if !self.rest.is_empty() {
            return Err(ProtocolError::ArgsTrailing {
                count: self.count,
                extra: self.rest.len(),
            });
        }
        Ok(())
    }

    fn overrun(&mut self, declared: u64, remaining: usize) -> ProtocolError {
        let index = self.index;
        // A broken framing ends the sequence (the iterator stops), and `next_arg` and `finish`
        // report the same place again.
        self.count = index;
        self.rest.clear();
        self.broken = Some((index, declared, remaining));
        ProtocolError::ArgsOverrun {
            index,
            declared,
            remaining,
        }
    }
}

impl Iterator for Args {
    type Item = Result<Bytes, ProtocolError>;

    /// Yields each declared argument, then one error if bytes are left over.
    fn next(&mut self) -> Option<Self::Item> {
        if self.index < self.count {
            return Some(self.next_arg());
        }
        if self.rest.is_empty() {
            return None;
        }
        let extra = std::mem::take(&mut self.rest).len();
        Some(Err(ProtocolError::ArgsTrailing {
            count: self.count,
            extra,
        }))
    }
}
