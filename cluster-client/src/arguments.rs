//! Typed argument tuples to and from the invoke-argument framing, and their canonical JSON key.
//!
//! Generated code passes a method's arguments as a tuple, `(a, b,)`; each element is encoded with the
//! cluster's codec as one framed argument.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::ProtocolError;
use crate::protocol::args::{Args, push_arg_with};
use crate::transcode::{Codec, CodecError, Transcode};

/// A tuple of arguments a follower sends.
pub trait EncodeArgs {
    /// How many arguments.
    const ARITY: u32;

    /// Appends each argument, framed, to `out`.
    fn encode(&self, codec: Codec, out: &mut BytesMut) -> Result<(), CodecError>;

    /// The canonical JSON of the arguments (one argument: its own JSON; none: `null`; several: an
    /// array), with object keys sorted: the identity of a subscription or publish.
    fn canonical_json(&self) -> Result<String, serde_json::Error>;
}

/// A tuple of arguments a leader receives.
pub trait DecodeArgs: Sized {
    /// How many arguments.
    const ARITY: u32;

    /// Decodes every argument; the framing must declare exactly [`ARITY`](Self::ARITY) of them.
    fn decode(codec: Codec, args: Args) -> Result<Self, ArgsError>;

    /// Decodes from an application object that holds exactly [`ARITY`](Self::ARITY) framed arguments.
    fn decode_app(codec: Codec, app: Bytes) -> Result<Self, ArgsError> {
        Self::decode(codec, Args::new(app, Self::ARITY))
    }
}

/// Arguments that did not frame or decode.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The framing is broken or declares the wrong count.
    #[error(transparent)]
    Framing(#[from] ProtocolError),
    /// An argument did not decode as its parameter's type.
    #[error("argument {index}: {source}")]
    Decode {
        /// Zero-based index.
        index: u32,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The packet declares another number of arguments than the method takes.
    #[error("the method takes {expected} arguments, the packet declares {declared}")]
    Count {
        /// The method's arity.
        expected: u32,
        /// The packet's `argLength`.
        declared: u32,
    },
}

/// The canonical JSON of one value: serde_json's `Value` keeps object keys sorted.
fn canonical<T: Serialize + ?Sized>(value: &T) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(value)
}

macro_rules! tuple_args {
    ($arity:expr; $($name:ident $idx:tt),*) => {
        impl<$($name: Serialize),*> EncodeArgs for ($($name,)*) {
            const ARITY: u32 = $arity;

            #[allow(unused_variables)]
            fn encode(&self, codec: Codec, out: &mut BytesMut) -> Result<(), CodecError> {
                $( push_arg_with(out, |out| codec.encode(&self.$idx, out))?; )*
                Ok(())
            }

            fn canonical_json(&self) -> Result<String, serde_json::Error> {
                let values: Vec<serde_json::Value> = vec![$(canonical(&self.$idx)?),*];
                match values.as_slice() {
                    [] => Ok("null".to_owned()),
                    [one] => serde_json::to_string(one),
                    all => serde_json::to_string(all),
                }
            }
        }

        impl<$($name: DeserializeOwned),*> DecodeArgs for ($($name,)*) {
            const ARITY: u32 = $arity;

            #[allow(unused_mut, unused_variables)]
            fn decode(codec: Codec, mut args: Args) -> Result<Self, ArgsError> {
                if args.declared() != $arity {
                    return Err(ArgsError::Count { expected: $arity, declared: args.declared() });
                }
                let value = ($({
                    let bytes = args.next_arg()?;
                    codec
                        .decode::<$name>(&bytes)
                        .map_err(|source| ArgsError::Decode { index: $idx, source })?
                },)*);
                args.finish()?;
                Ok(value)
            }
        }
    };
}

tuple_args!(0;);
tuple_args!(1; A0 0);
tuple_args!(2; A0 0, A1 1);
tuple_args!(3; A0 0, A1 1, A2 2);
tuple_args!(4; A0 0, A1 1, A2 2, A3 3);
tuple_args!(5; A0 0, A1 1, A2 2, A3 3, A4 4);
tuple_args!(6; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
tuple_args!(7; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6);
tuple_args!(8; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7);
tuple_args!(9; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8);
tuple_args!(10; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9);
tuple_args!(11; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10);
tuple_args!(12; A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7, A8 8, A9 9, A10 10, A11 11);
