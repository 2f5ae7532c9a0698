//! Application-object codecs: how argument, result, error and item values become bytes.
//!
//! One trait, [`Transcode`], with one implementation per format: `Bincode` (the compact default,
//! feature `bincode`), [`Json`] (self-describing, tolerant of added fields) and `Postcard` (feature
//! `postcard`). [`Codec`] names one of them at run time; it is what [`Options`](crate::Options) holds and
//! what a follower announces at registration, so a leader never decodes with the wrong format.
//!
//! ```
//! use bytes::BytesMut;
//! use cluster_client::transcode::{Codec, Transcode};
//!
//! let mut buf = BytesMut::new();
//! Codec::Json.encode(&vec![1u8, 2, 3], &mut buf).unwrap();
//! assert_eq!(&buf[..], b"[1,2,3]");
//! let back: Vec<u8> = Codec::Json.decode(&buf).unwrap();
//! assert_eq!(back, [1, 2, 3]);
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

/// A value that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Serialising a value failed.
    #[error("{codec} could not encode a value: {message}")]
    Encode {
        /// The codec's name.
        codec: &'static str,
        /// What the codec reported.
        message: String,
    },
    /// Deserialising bytes failed.
    #[error("{codec} could not decode {len} bytes: {message}")]
    Decode {
        /// The codec's name.
        codec: &'static str,
        /// How many bytes were given.
        len: usize,
        /// What the codec reported.
        message: String,
    },
}

/// An application-object format.
pub trait Transcode {
    /// The format's name, as announced at registration.
    fn name(&self) -> &'static str;

    /// Appends the encoding of `value` to `out`; on error `out` is left as it was.
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError>;

    /// Decodes one value that fills all of `bytes`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

fn encode_error(codec: &'static str, err: impl fmt::Display) -> CodecError {
    CodecError::Encode {
        codec,
        message: err.to_string(),
    }
}

fn decode_error(codec: &'static str, len: usize, err: impl fmt::Display) -> CodecError {
    CodecError::Decode {
        codec,
        len,
        message: err.to_string(),
    }
}

/// Runs `write` and restores `out` to its length before it on error.
fn atomic_write<E>(
    out: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    write(out).inspect_err(|_| out.truncate(start))
}

/// bincode 2.0 in serde mode with its standard configuration (variable-length integers).
///
/// Compact and fast, but not self-describing: leader and follower must use the same trait, which the
/// schema fingerprint checks at registration. bincode is unmaintained upstream (RUSTSEC-2025-0141), so it
/// is pinned and sits behind the default feature `bincode`.
#[cfg(feature = "bincode")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Transcode for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        atomic_write(out, |out| {
            bincode::serde::encode_into_writer(value, BincodeBuf(out), bincode::config::standard())
                .map_err(|e| encode_error("bincode", e))
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, read) = bincode_within_frame(bytes).map_err(|e| match e {
            bincode::error::DecodeError::LimitExceeded => decode_error(
                "bincode",
                bytes.len(),
                "a length claims more bytes than the input holds",
            ),
            other => decode_error("bincode", bytes.len(), other),
        })?;
        if read != bytes.len() {
            return Err(decode_error(
                "bincode",
                bytes.len(),
                format_args!("{} trailing bytes", bytes.len() - read),
            ));
        }
        Ok(value)
    }
}

/// Decodes with a bincode configuration whose byte limit is bounded by the input's own length.
///
/// bincode reads a string's or byte buffer's length prefix and allocates that much before it reads
/// the bytes, unless the configuration has a limit: then it first claims the length against the
/// limit. Without one, a 13-byte argument whose prefix says 2^40 makes the process abort on the
/// allocation. Every string and byte buffer of a valid input lies inside it, so their lengths add up
/// to at most `bytes.len()`; the limit is the smallest size class (powers of 8, from 512 bytes to
/// 1 GiB, then 4 GiB) that holds that, so a decode never allocates more than 8 times its input for them. bincode takes the
/// limit as a type parameter, hence the classes rather than the exact length. Sequences and maps are
/// pre-allocated by serde itself, which caps a length hint at 1 MiB.
#[cfg(feature = "bincode")]
fn bincode_within_frame<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::decode_from_slice;
    macro_rules! classes {
        ($($shift:literal),*) => {
            match bytes.len() {
                $(len if len <= 1 << $shift => {
                    decode_from_slice(bytes, standard().with_limit::<{ 1 << $shift }>())
                })*
                // A packet's lengths are u32, so no frame holds more.
                _ => decode_from_slice(bytes, standard().with_limit::<{ u32::MAX as usize }>()),
            }
        };
    }
    classes!(9, 12, 15, 18, 21, 24, 27, 30)
}

/// bincode's writer straight into a `BytesMut` (no `std::io::Write` layer per byte).
#[cfg(feature = "bincode")]
struct BincodeBuf<'a>(&'a mut BytesMut);

#[cfg(feature = "bincode")]
impl bincode::enc::write::Writer for BincodeBuf<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// JSON through serde_json: self-describing, readable in a packet capture, tolerant of added fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl Transcode for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        atomic_write(out, |out| {
            serde_json::to_writer(out.writer(), value).map_err(|e| encode_error("json", e))
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| decode_error("json", bytes.len(), e))
    }
}

/// postcard: a maintained compact format (feature `postcard`).
#[cfg(feature = "postcard")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

#[cfg(feature = "postcard")]
impl Transcode for Postcard {
    fn name(&self) -> &'static str {
        "postcard"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        atomic_write(out, |out| {
            postcard::to_io(value, out.writer())
                .map(drop)
                .map_err(|e| encode_error("postcard", e))
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match postcard::take_from_bytes(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(decode_error(
                "postcard",
                bytes.len(),
                format_args!("{} trailing bytes", rest.len()),
            )),
            Err(e) => Err(decode_error("postcard", bytes.len(), e)),
        }
    }
}

/// The codec a cluster uses, chosen at run time. Every process of a channel must use the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// The `Bincode` codec (feature `bincode`).
    #[cfg(feature = "bincode")]
    Bincode,
    /// [`Json`].
    Json,
    /// The `Postcard` codec (feature `postcard`).
    #[cfg(feature = "postcard")]
    Postcard,
}

impl Default for Codec {
    /// `Codec::Bincode` when the `bincode` feature is on, else [`Codec::Json`].
    fn default() -> Self {
        #[cfg(feature = "bincode")]
        return Codec::Bincode;
        #[cfg(not(feature = "bincode"))]
        return Codec::Json;
    }
}

impl Codec {
    /// The codec of the given name (see [`Transcode::name`]), if compiled in.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            #[cfg(feature = "bincode")]
            "bincode" => Some(Codec::Bincode),
            "json" => Some(Codec::Json),
            #[cfg(feature = "postcard")]
            "postcard" => Some(Codec::Postcard),
            _ => None,
        }
    }
}

/// Forwards a [`Transcode`] method to the codec `$codec` names.
macro_rules! dispatch {
    ($codec:expr, $method:ident ( $($arg:expr),* )) => {
        match $codec {
            #[cfg(feature = "bincode")]
            Codec::Bincode => Bincode.$method($($arg),*),
            Codec::Json => Json.$method($($arg),*),
            #[cfg(feature = "postcard")]
            Codec::Postcard => Postcard.$method($($arg),*),
        }
    };
}

impl Transcode for Codec {
    fn name(&self) -> &'static str {
        dispatch!(self, name())
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        dispatch!(self, encode(value, out))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        dispatch!(self, decode(bytes))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
