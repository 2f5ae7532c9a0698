//! The connection object: the JSON text between the header and the application object.
//!
//! Its JSON is exactly the original package's (`"type":"register_channel"`, `"channelName"`,
//! `"argLength"`, `"unSubscribe"`, …). Each `type` has its own struct here, with its fields and
//! their serde attributes; [`ConnObject`] holds one of them, and one table (the `conn_types!`
//! invocation below) names the `type` of each. Fields this crate adds are optional and left out
//! when unset, so a packet of the original re-encodes to the same bytes. Unknown fields are
//! ignored; an unknown `type` is [`ProtocolError::UnknownType`].
//!
//! A struct on its own (de)serialises without the `type` field: only [`ConnObject`] writes and
//! reads it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{FaultCode, ProtocolError, RefusalCode};
use crate::excerpt::{MESSAGE_CHARS, excerpt};

/// Defines [`ConnObject`] from the table of types: each line is a variant, the struct it holds (of
/// the same name) and its `type` on the wire. The table is the only place a `type` is written: it
/// gives [`ConnObject::type_name`], the serialisation, the known-type check and the struct a `type`
/// is read as.
macro_rules! conn_types {
    ($($(#[$doc:meta])* $variant:ident = $type_name:literal,)*) => {
        /// One connection object, tagged by its `type` field.
        ///
        /// ```
        /// use cluster_client::protocol::ConnObject;
        /// use cluster_client::protocol::conn::{Heartbeat, Invoke};
        ///
        /// let conn = ConnObject::parse(br#"{"type":"heartbeat"}"#).unwrap();
        /// assert_eq!(conn, ConnObject::Heartbeat(Heartbeat {}));
        /// assert_eq!(conn.to_json().unwrap(), r#"{"type":"heartbeat"}"#);
        ///
        /// let call = Invoke { method: "m".into(), arg_length: 1, oneway: false };
        /// let call = ConnObject::from(call);
        /// assert_eq!(call.type_name(), "invoke");
        /// assert_eq!(
        ///     call.to_json().unwrap(),
        ///     r#"{"type":"invoke","method":"m","argLength":1,"oneway":false}"#
        /// );
        /// ```
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum ConnObject {
            $($(#[$doc])* $variant($variant),)*
        }

        impl ConnObject {
            /// The value of its `type` field.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(ConnObject::$variant(_) => $type_name,)*
                }
            }
        }

        $(
            impl From<$variant> for ConnObject {
                fn from(body: $variant) -> Self {
                    ConnObject::$variant(body)
                }
            }
        )*

        /// The known `type` values.
        const TYPES: &[&str] = &[$($type_name),*];

        /// `{"type": …}` followed by the fields of the struct.
        impl Serialize for ConnObject {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(ConnObject::$variant(body) => {
                        Tagged { ty: $type_name, body }.serialize(serializer)
                    })*
                }
            }
        }

        /// Reads `text` as the struct of the type `ty`; `None` when `ty` is not known.
        fn read_as(ty: &str, text: &str) -> Option<Result<ConnObject, serde_json::Error>> {
            match ty {
                $($type_name => Some(serde_json::from_str(text).map(ConnObject::$variant)),)*
                _ => None,
            }
        }
    };
}

conn_types! {
    /// A follower's first packet.
    RegisterChannel = "register_channel",
    /// The leader's answer to `register_channel`.
    RegisterChannelRes = "register_channel_res",
    /// A method call.
    Invoke = "invoke",
    /// The answer to a two-way `invoke`.
    InvokeResult = "invoke_result",
    /// Subscribe to a key.
    Subscribe = "subscribe",
    /// Drop a subscription.
    UnSubscribe = "unSubscribe",
    /// A pushed item.
    SubscribeResult = "subscribe_result",
    /// The follower's acknowledgement of a push.
    SubscribeResultRes = "subscribe_result_res",
    /// The leader's notice that a subscription is live upstream (this crate's, sent only to
    /// followers of this crate).
    SubscribeReady = "subscribe_ready",
    /// A follower's keep-alive.
    Heartbeat = "heartbeat",
    /// The leader's answer to a heartbeat.
    HeartbeatRes = "heartbeat_res",
    /// The leader's notice that it is leaving (this crate's, sent only to followers of this crate).
    LeaderLeaving = "leader_leaving",
    /// A follower asks the leader for a snapshot of the channel (this crate's).
    ChannelStats = "stats",
    /// The leader's snapshot, as JSON in the application object (this crate's).
    ChannelStatsRes = "stats_res",
}

/// A follower's first packet: join the leader of `channelName`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterChannel {
    /// The channel (client type) to join.
    pub channel_name: String,
    /// Extension: the schema fingerprint of the follower's trait, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Extension: the name of the application-object codec the follower uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Extension: the follower's process id, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Extension: the follower's fresh nonce (hex), asking the leader to prove the cluster secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Extension: the follower's proof of the cluster secret (hex), in a second `register_channel`
    /// that answers the leader's challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// The leader's answer to `register_channel`, sent once its real client is ready.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterChannelRes {
    /// Extension: whether the follower was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// Extension: the leadership term the follower joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Extension: why the follower was refused, as a machine-readable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RefusalCode>,
    /// Extension: why the follower was refused, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extension: `false` when the leader wants no `subscribe_result_res` acknowledgements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_ack: Option<bool>,
    /// Extension: in a challenge (no `success` yet), the leader's fresh nonce (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Extension: in a challenge, the leader's proof of the cluster secret (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// Extension: the leader's process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_pid: Option<u32>,
    /// Extension: when the leader's term began, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<u64>,
}

/// A method call; its arguments travel in the application object (see [`args`](super::args)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoke {
    /// The method name.
    pub method: String,
    /// How many arguments the application object holds.
    pub arg_length: u32,
    /// `true` when no `invoke_result` is wanted.
    pub oneway: bool,
}

/// The answer to a two-way `invoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeResult {
    /// Whether the application object holds the result (`true`) or an error (`false`).
    pub success: bool,
    /// Extension: set when the failure is the runtime's rather than the method's own error value;
    /// the application object then holds a UTF-8 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultCode>,
}

/// Subscribe to `key`; the leader pushes items as `subscribe_result` requests. No answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// `$$inner$$__` followed by the canonical JSON of the argument.
    pub key: String,
    /// The argument, as JSON.
    pub reg: RawJson,
    /// Extension: the subscribe method; absent means the original's single `subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Drop the subscription to `key`. No answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnSubscribe {
    /// The key given at `subscribe`.
    pub key: String,
    /// The argument, as JSON.
    pub reg: RawJson,
    /// Extension: the subscribe method; absent means the original's single `subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// A pushed item (a request from the leader); the application object holds the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeResult {
    /// The subscription key.
    pub key: String,
    /// Extension: the subscribe method; absent means the original's single `subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Extension: set on the last packet of a subscription the leader ended; the application
    /// object then holds the reason as UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Extension: with `end`, the application object holds the real client's own error, in the
    /// channel's codec, rather than the reason's text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typed: bool,
    /// Extension: with `end`, the id of the follower's `subscribe` request the end answers, so
    /// that the end of a subscription it has dropped does not end a later one to the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
}

/// The real client's subscribe for `key` has returned: from now on no item of it is missed. A
/// request with no answer, sent to followers of this crate (those that name the method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeReady {
    /// The subscription key.
    pub key: String,
    /// The subscribe method.
    pub method: String,
    /// The id of the follower's `subscribe` request the notice answers, so that the notice of a
    /// subscription it has dropped does not mark a later one to the same key live. Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
}

/// The follower's acknowledgement of a push.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeResultRes {}

/// A follower's keep-alive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {}

/// The leader's answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRes {}

/// The leader's notice that it is leaving, a request with no answer: the follower elects a
/// successor and moves its calls and subscriptions there, while the leader still answers the calls
/// it has and pushes items until the follower closes the connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaderLeaving {
    /// Its real client resigned (it is broken): the follower need not wait for this leader to
    /// deliver items it cannot get.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resigned: bool,
}

/// A follower asks the leader for a snapshot of the channel; answered with `stats_res`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {}

/// The leader's snapshot of the channel ([`Stats`](crate::stats::Stats) as JSON in the application
/// object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStatsRes {}

impl ConnObject {
    /// Parses a connection object, telling bad UTF-8, bad JSON and an unknown `type` apart.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if let Some(conn) = super::fast::read(bytes) {
            return Ok(conn);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|source| ProtocolError::ConnObjectUtf8 { source })?;
        from_text(text).map_err(|source| {
            unknown_type(text).unwrap_or_else(|| ProtocolError::ConnObjectJson {
                message: excerpt(&source.to_string(), MESSAGE_CHARS),
            })
        })
    }

    /// The JSON text of this connection object.
    pub fn to_json(&self) -> Result<String, ProtocolError> {
        serde_json::to_string(self).map_err(|source| ProtocolError::ConnObjectEncode { source })
    }
}

/// What [`ConnObject`] serialises: the `type`, then the struct's own fields.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// On the error path only: `Some` when the text is a JSON object whose `type` is a string this crate
/// does not know.
fn unknown_type(text: &str) -> Option<ProtocolError> {
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        ty: String,
    }
    let TypeOnly { ty } = serde_json::from_str(text).ok()?;
    if TYPES.contains(&ty.as_str()) {
        return None;
    }
    Some(ProtocolError::UnknownType {
        found: ty.chars().take(64).collect(),
    })
}

// Deserialization. serde's internally tagged enums buffer every field before they pick the variant,
// and a buffered field can no longer be read as a `RawValue` ("invalid type: newtype struct"), which
// broke every `subscribe` and `unSubscribe`. The connection object is always JSON, so its text is
// read for the `type` first (borrowed, unless it has escapes), then read again, straight from the
// text, as that type's struct (`type` is then an ignored field).

impl<'de> Deserialize<'de> for ConnObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        from_text(raw.get()).map_err(de::Error::custom)
    }
}

fn from_text(text: &str) -> Result<ConnObject, serde_json::Error> {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        ty: Cow<'a, str>,
    }
    let TypeOnly { ty } = serde_json::from_str(text)?;
    read_as(&ty, text).unwrap_or_else(|| Err(de::Error::unknown_variant(&ty, TYPES)))
}

/// A JSON value kept as the exact text it arrived as, so a packet re-encodes byte for byte.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Wraps JSON text after checking that it is valid JSON.
    pub fn new(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(RawJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}
