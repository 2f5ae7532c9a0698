//! The machine-readable codes a connection object carries: why a leader refused a follower
//! (`register_channel_res`'s `code`, [`RefusalCode`]) and why the runtime failed a call
//! (`invoke_result`'s `fault`, [`FaultCode`]).
//!
//! Each is the same JSON string as before (`"schema_mismatch"`, `"overloaded"`, …). A code this
//! crate does not know, from a newer peer, is kept as it came (`Other`), so it still reaches the
//! caller and a packet re-encodes to the same bytes.
//!
//! ```
//! use cluster_client::protocol::{FaultCode, RefusalCode};
//!
//! assert_eq!("codec_mismatch".parse(), Ok(RefusalCode::CodecMismatch));
//! assert_eq!(FaultCode::Overloaded.as_str(), "overloaded");
//! let newer = FaultCode::from("rate_limited");
//! assert_eq!(newer, FaultCode::Other("rate_limited".into()));
//! assert_eq!(serde_json::to_string(&newer).unwrap(), r#""rate_limited""#);
//! ```

use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Defines a code enum: its known variants and their strings (this table is the only place a code's
/// string is written), an `Other(String)` for the rest, and the conversions, comparisons and serde
/// impls, all by the string.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        pub enum $code:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        #[non_exhaustive]
        pub enum $code {
            $($(#[$variant_meta])* $variant,)*
            /// A code this crate does not know (a newer peer's), as it came. Never one of the known
            /// codes: parsing gives those their own variant.
            Other(String),
        }

        impl $code {
            /// The code as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($code::$variant => $text,)*
                    $code::Other(code) => code,
                }
            }

            /// The known code written `text`, if there is one.
            fn known(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($code::$variant),)*
                    _ => None,
                }
            }
        }

        impl From<&str> for $code {
            fn from(text: &str) -> Self {
                $code::known(text).unwrap_or_else(|| $code::Other(text.to_owned()))
            }
        }

        impl From<String> for $code {
            fn from(text: String) -> Self {
                $code::known(&text).unwrap_or($code::Other(text))
            }
        }

        impl FromStr for $code {
            type Err = Infallible;

            fn from_str(text: &str) -> Result<Self, Infallible> {
                Ok($code::from(text))
            }
        }

        impl fmt::Display for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// As the string (`"overloaded"`), the way the code was shown when it was a `String`.
        impl fmt::Debug for $code {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl PartialEq for $code {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $code {}

        impl Hash for $code {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl PartialEq<str> for $code {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $code {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $code {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $code {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct CodeVisitor;

                impl Visitor<'_> for CodeVisitor {
                    type Value = $code;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }

                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$code, E> {
                        Ok($code::from(text))
                    }

                    fn visit_string<E: de::Error>(self, text: String) -> Result<$code, E> {
                        Ok($code::from(text))
                    }
                }

                deserializer.deserialize_str(CodeVisitor)
            }
        }
    };
}

codes! {
    /// Why a leader refused a follower's `register_channel`: the `code` of its
    /// `register_channel_res`.
    pub enum RefusalCode {
        /// The follower's trait is not the leader's (different schema fingerprints).
        SchemaMismatch = "schema_mismatch",
        /// The follower encodes application objects with another codec than the leader.
        CodecMismatch = "codec_mismatch",
        /// The port server serves as many connections as it may.
        TooManyConnections = "too_many_connections",
        /// The leader's real client could not be built.
        FactoryFailed = "factory_failed",
        /// No leader of the channel on this port (none yet, or it stopped).
        UnknownChannel = "unknown_channel",
        /// The follower did not ask the leader to prove the cluster secret, and so cannot prove it
        /// either: its authentication is off, the leader's is on.
        AuthRequired = "auth_required",
        /// The follower's proof of the cluster secret is wrong: it holds another secret.
        AuthFailed = "auth_failed",
        /// The refusal came without a code. Never sent: a follower's own name for that.
        Refused = "refused",
    }
}

codes! {
    /// Why the runtime failed a call rather than the method's own error value: the `fault` of an
    /// `invoke_result`, and the name of [`Error::Remote`](crate::Error::Remote).
    pub enum FaultCode {
        /// No method of that name, or none of the kind asked for.
        UnknownMethod = "unknown_method",
        /// The arguments do not frame or decode as the method's parameters.
        BadArguments = "bad_arguments",
        /// The method's result could not be encoded.
        EncodeFailed = "encode_failed",
        /// The real client panicked while running the method.
        Panicked = "panicked",
        /// Too many calls in flight, or too many subscriptions.
        Overloaded = "overloaded",
        /// The answer to a call was not an `invoke_result`. Never sent: a follower's own name for
        /// that.
        UnexpectedAnswer = "unexpected_answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_parse_to_their_variant_and_back() {
        for code in [
            RefusalCode::SchemaMismatch,
            RefusalCode::CodecMismatch,
            RefusalCode::TooManyConnections,
            RefusalCode::FactoryFailed,
            RefusalCode::UnknownChannel,
            RefusalCode::Refused,
        ] {
            let parsed: RefusalCode = code.as_str().parse().unwrap();
            assert!(!matches!(parsed, RefusalCode::Other(_)), "{code}");
            assert_eq!(parsed, code);
        }
        for code in [
            FaultCode::UnknownMethod,
            FaultCode::BadArguments,
            FaultCode::EncodeFailed,
            FaultCode::Panicked,
            FaultCode::Overloaded,
            FaultCode::UnexpectedAnswer,
        ] {
            let parsed = FaultCode::from(code.as_str().to_owned());
            assert!(!matches!(parsed, FaultCode::Other(_)), "{code}");
            assert_eq!(parsed, code);
        }
    }

    #[test]
    fn unknown_codes_are_kept() {
        let code: FaultCode = serde_json::from_str(r#""quota_exceeded""#).unwrap();
        assert_eq!(code, FaultCode::Other("quota_exceeded".into()));
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""quota_exceeded""#);
        let code: RefusalCode = serde_json::from_str(r#""unknown_chann\u0065l""#).unwrap();
        assert!(matches!(code, RefusalCode::UnknownChannel));
        assert_eq!(
            format!("{code} {code:?}"),
            r#"unknown_channel "unknown_channel""#
        );
        assert!(serde_json::from_str::<RefusalCode>("1").is_err());
    }
}
