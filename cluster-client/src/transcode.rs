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

use crate::excerpt::{MESSAGE_CHARS, excerpt};

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
        /// What the codec reported, cut to 256 characters (it may quote the peer's bytes).
        message: String,
    },
    /// The codec is not compiled in: its cargo feature is off.
    #[error(
        "the {codec} codec is not compiled in: enable the `{feature}` feature of cluster-client"
    )]
    Unavailable {
        /// The codec's name.
        codec: &'static str,
        /// The cargo feature of `cluster-client` that compiles it in.
        feature: &'static str,
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

/// A decoding error; its message, which may quote the peer's bytes, is cut to 256 characters.
fn decode_error(codec: &'static str, len: usize, err: impl fmt::Display) -> CodecError {
    CodecError::Decode {
        codec,
        len,
        message: excerpt(&err.to_string(), MESSAGE_CHARS),
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
/// allocation. bincode also claims each number's size in memory (16 bytes at most) however few
/// bytes encode it, so a valid input claims at most 16 bytes per byte it holds. The limit is the
/// smallest size class (powers of 4, from 1 KiB to 1 GiB) that holds 16 times the input; a decode
/// never allocates more than that for what a length only claims, and such an allocation is zeroed
/// memory that is refused before it is written. bincode takes the limit as a type parameter, hence
/// the classes rather than the exact figure. Inputs over 64 MiB (only possible with a
/// `max_frame_size` raised that far) get the 1 GiB class. Sequences and maps are pre-allocated by
/// serde itself, which caps a length hint at 1 MiB of elements.
#[cfg(feature = "bincode")]
fn bincode_within_frame<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::decode_from_slice;
    /// The most a valid input claims per byte it holds (a one-byte `u128`).
    const CLAIM_PER_BYTE: usize = 16;
    let claim = bytes.len().saturating_mul(CLAIM_PER_BYTE);
    macro_rules! classes {
        ($($shift:literal),*; $last:literal) => {
            match claim {
                $(c if c <= 1 << $shift => {
                    decode_from_slice(bytes, standard().with_limit::<{ 1 << $shift }>())
                })*
                _ => decode_from_slice(bytes, standard().with_limit::<{ 1 << $last }>()),
            }
        };
    }
    classes!(10, 12, 14, 16, 18, 20, 22, 24, 26, 28; 30)
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

/// The Node package's default transcode, `serialize-json` (see [`crate::serialize_json`]): a
/// packed text format with a dictionary of strings, numbers and dates. The codec of a cluster with
/// Node processes in it. It has JavaScript's one number type: an integer beyond ±2^53 is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerializeJson;

impl Transcode for SerializeJson {
    fn name(&self) -> &'static str {
        "serialize-json"
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let bytes =
            crate::serialize_json::to_vec(value).map_err(|e| encode_error("serialize-json", e))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        crate::serialize_json::from_slice(bytes)
            .map_err(|e| decode_error("serialize-json", bytes.len(), e))
    }
}

/// The codec a cluster uses, chosen at run time. Every process of a channel must use the same one.
///
/// Every variant exists whatever features are on, so the default is the same in every build: a
/// codec whose feature is off fails with [`CodecError::Unavailable`], and `create()` refuses it
/// before it joins the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// The `Bincode` codec (feature `bincode`, on by default). The default.
    #[default]
    Bincode,
    /// [`Json`].
    Json,
    /// The `Postcard` codec (feature `postcard`).
    Postcard,
    /// [`SerializeJson`], the Node package's default: for clusters with Node processes in them.
    SerializeJson,
}

impl Codec {
    /// Every codec, whether compiled in or not (see [`Codec::available`]).
    pub const ALL: [Codec; 4] = [
        Codec::Bincode,
        Codec::Json,
        Codec::Postcard,
        Codec::SerializeJson,
    ];

    /// The codec of the given name (see [`Transcode::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "bincode" => Some(Codec::Bincode),
            "json" => Some(Codec::Json),
            "postcard" => Some(Codec::Postcard),
            "serialize-json" => Some(Codec::SerializeJson),
            _ => None,
        }
    }

    /// `Ok` when this codec is compiled in; else the error that names the feature to enable.
    pub fn available(self) -> Result<(), CodecError> {
        const FEATURES: [(Codec, bool, &str); 2] = [
            (Codec::Bincode, cfg!(feature = "bincode"), "bincode"),
            (Codec::Postcard, cfg!(feature = "postcard"), "postcard"),
        ];
        match FEATURES.iter().find(|(codec, on, _)| *codec == self && !on) {
            Some(&(_, _, feature)) => Err(CodecError::Unavailable {
                codec: self.name(),
                feature,
            }),
            None => Ok(()),
        }
    }
}

/// Forwards a [`Transcode`] method to the codec `$codec` names; a codec that is not compiled in
/// gives `$off`, with `$name` its name and `$feature` its feature.
macro_rules! dispatch {
    ($codec:expr, $method:ident ( $($arg:expr),* ), |$name:ident, $feature:ident| $off:expr) => {
        match $codec {
            #[cfg(feature = "bincode")]
            Codec::Bincode => Bincode.$method($($arg),*),
            #[cfg(not(feature = "bincode"))]
            Codec::Bincode => {
                let ($name, $feature) = ("bincode", "bincode");
                $off
            }
            Codec::Json => Json.$method($($arg),*),
            Codec::SerializeJson => SerializeJson.$method($($arg),*),
            #[cfg(feature = "postcard")]
            Codec::Postcard => Postcard.$method($($arg),*),
            #[cfg(not(feature = "postcard"))]
            Codec::Postcard => {
                let ($name, $feature) = ("postcard", "postcard");
                $off
            }
        }
    };
}

impl Transcode for Codec {
    fn name(&self) -> &'static str {
        dispatch!(self, name(), |codec, _feature| codec)
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        dispatch!(self, encode(value, out), |codec, feature| Err(
            CodecError::Unavailable { codec, feature }
        ))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        dispatch!(self, decode(bytes), |codec, feature| Err(
            CodecError::Unavailable { codec, feature }
        ))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
