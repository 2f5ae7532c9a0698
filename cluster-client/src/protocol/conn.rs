//! The connection object: the JSON text between the header and the application object.
//!
//! Its JSON is exactly the original package's (`"type":"register_channel"`, `"channelName"`,
//! `"argLength"`, `"unSubscribe"`, …). Fields this crate adds are optional and left out when unset, so
//! a packet of the original re-encodes to the same bytes. Unknown fields are ignored; an unknown `type`
//! is [`ProtocolError::UnknownType`].

use std::fmt;

use serde::de::{self, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ProtocolError;

/// One connection object, tagged by its `type` field.
///
/// ```
/// use cluster_client::protocol::ConnObject;
///
/// let conn = ConnObject::parse(br#"{"type":"heartbeat"}"#).unwrap();
/// assert_eq!(conn, ConnObject::Heartbeat {});
/// assert_eq!(conn.to_json().unwrap(), r#"{"type":"heartbeat"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ConnObject {
    /// A follower's first packet: join the leader of `channelName`.
    #[serde(rename = "register_channel", rename_all = "camelCase")]
    RegisterChannel {
        /// The channel (client type) to join.
        channel_name: String,
        /// Extension: the schema fingerprint of the follower's trait, in hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<String>,
        /// Extension: the name of the application-object codec the follower uses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        codec: Option<String>,
        /// Extension: the follower's process id, for logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// The leader's answer to `register_channel`, sent once its real client is ready.
    #[serde(rename = "register_channel_res", rename_all = "camelCase")]
    RegisterChannelRes {
        /// Extension: whether the follower was accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        success: Option<bool>,
        /// Extension: the leadership term the follower joined.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
        /// Extension: why the follower was refused, as a machine-readable code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Extension: why the follower was refused, for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Extension: `false` when the leader wants no `subscribe_result_res` acknowledgements.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push_ack: Option<bool>,
    },
    /// A method call; its arguments travel in the application object (see [`args`](super::args)).
    #[serde(rename = "invoke", rename_all = "camelCase")]
    Invoke {
        /// The method name.
        method: String,
        /// How many arguments the application object holds.
        arg_length: u32,
        /// `true` when no `invoke_result` is wanted.
        oneway: bool,
    },
    /// The answer to a two-way `invoke`.
    #[serde(rename = "invoke_result", rename_all = "camelCase")]
    InvokeResult {
        /// Whether the application object holds the result (`true`) or an error (`false`).
        success: bool,
        /// Extension: set when the failure is the runtime's rather than the method's own error value;
        /// the application object then holds a UTF-8 message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<String>,
    },
    /// Subscribe to `key`; the leader pushes items as `subscribe_result` requests. No answer.
    #[serde(rename = "subscribe", rename_all = "camelCase")]
    Subscribe {
        /// `$$inner$$__` followed by the canonical JSON of the argument.
        key: String,
        /// The argument, as JSON.
        reg: RawJson,
        /// Extension: the subscribe method; absent means the original's single `subscribe`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
    },
    /// Drop the subscription to `key`. No answer.
    #[serde(rename = "unSubscribe", rename_all = "camelCase")]
    UnSubscribe {
        /// The key given at `subscribe`.
        key: String,
        /// The argument, as JSON.
        reg: RawJson,
        /// Extension: the subscribe method; absent means the original's single `subscribe`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
    },
    /// A pushed item (a request from the leader); the application object holds the item.
    #[serde(rename = "subscribe_result", rename_all = "camelCase")]
    SubscribeResult {
        /// The subscription key.
        key: String,
        /// Extension: the subscribe method; absent means the original's single `subscribe`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// Extension: set on the last packet of a subscription the leader ended; the application
        /// object then holds the reason as UTF-8.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<String>,
    },
    /// The follower's acknowledgement of a push.
    #[serde(rename = "subscribe_result_res")]
    SubscribeResultRes {},
    /// A follower's keep-alive.
    #[serde(rename = "heartbeat")]
    Heartbeat {},
    /// The leader's answer to a heartbeat.
    #[serde(rename = "heartbeat_res")]
    HeartbeatRes {},
}

impl ConnObject {
    /// Parses a connection object, telling bad UTF-8, bad JSON and an unknown `type` apart.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if let Some(conn) = super::fast::read(bytes) {
            return Ok(conn);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|source| ProtocolError::ConnObjectUtf8 { source })?;
        from_text(text).map_err(|source| {
            unknown_type(text).unwrap_or(ProtocolError::ConnObjectJson { source })
        })
    }

    /// The JSON text of this connection object.
    pub fn to_json(&self) -> Result<String, ProtocolError> {
        serde_json::to_string(self).map_err(|source| ProtocolError::ConnObjectEncode { source })
    }

    /// The value of its `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            ConnObject::RegisterChannel { .. } => "register_channel",
            ConnObject::RegisterChannelRes { .. } => "register_channel_res",
            ConnObject::Invoke { .. } => "invoke",
            ConnObject::InvokeResult { .. } => "invoke_result",
            ConnObject::Subscribe { .. } => "subscribe",
            ConnObject::UnSubscribe { .. } => "unSubscribe",
            ConnObject::SubscribeResult { .. } => "subscribe_result",
            ConnObject::SubscribeResultRes {} => "subscribe_result_res",
            ConnObject::Heartbeat {} => "heartbeat",
            ConnObject::HeartbeatRes {} => "heartbeat_res",
        }
    }
}

/// The known `type` values.
const KNOWN_TYPES: [&str; 10] = [
    "register_channel",
    "register_channel_res",
    "invoke",
    "invoke_result",
    "subscribe",
    "unSubscribe",
    "subscribe_result",
    "subscribe_result_res",
    "heartbeat",
    "heartbeat_res",
];

/// On the error path only: `Some` when the text is a JSON object whose `type` is a string this crate
/// does not know.
fn unknown_type(text: &str) -> Option<ProtocolError> {
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        ty: String,
    }
    let TypeOnly { ty } = serde_json::from_str(text).ok()?;
    if KNOWN_TYPES.contains(&ty.as_str()) {
        return None;
    }
    Some(ProtocolError::UnknownType {
        found: ty.chars().take(64).collect(),
    })
}

// Deserialization. serde's internally tagged enums buffer every field before they pick the variant,
// and a buffered field can no longer be read as a `RawValue` ("invalid type: newtype struct"), which
// broke every `subscribe` and `unSubscribe`. The connection object is always JSON, so its text is
// read for the `type` first, then read again as that variant's fields (`type` is then an ignored
// field). `Wire` mirrors `ConnObject` field for field, externally tagged, for that second read.

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
        ty: std::borrow::Cow<'a, str>,
    }
    let TypeOnly { ty } = serde_json::from_str(text)?;
    Wire::deserialize(Tagged { ty: &ty, text }).map(ConnObject::from)
}

/// Presents `text` as the externally tagged enum value `{ty: text}` without copying it.
struct Tagged<'a> {
    ty: &'a str,
    text: &'a str,
}

impl<'de> Deserializer<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), Self::Error> {
        let variant = seed.deserialize(self.ty.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"a struct variant",
        ))
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        _seed: S,
    ) -> Result<S::Value, Self::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::NewtypeVariant,
            &"a struct variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::TupleVariant,
            &"a struct variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let mut de = serde_json::Deserializer::from_str(self.text);
        let value = de::Deserializer::deserialize_struct(&mut de, "ConnObject", fields, visitor)?;
        de.end()?;
        Ok(value)
    }
}

/// `ConnObject`'s fields, externally tagged: see above.
#[derive(Deserialize)]
enum Wire {
    #[serde(rename = "register_channel", rename_all = "camelCase")]
    RegisterChannel {
        channel_name: String,
        #[serde(default)]
        fingerprint: Option<String>,
        #[serde(default)]
        codec: Option<String>,
        #[serde(default)]
        pid: Option<u32>,
    },
    #[serde(rename = "register_channel_res", rename_all = "camelCase")]
    RegisterChannelRes {
        #[serde(default)]
        success: Option<bool>,
        #[serde(default)]
        epoch: Option<u64>,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        push_ack: Option<bool>,
    },
    #[serde(rename = "invoke", rename_all = "camelCase")]
    Invoke {
        method: String,
        arg_length: u32,
        oneway: bool,
    },
    #[serde(rename = "invoke_result", rename_all = "camelCase")]
    InvokeResult {
        success: bool,
        #[serde(default)]
        fault: Option<String>,
    },
    #[serde(rename = "subscribe", rename_all = "camelCase")]
    Subscribe {
        key: String,
        reg: RawJson,
        #[serde(default)]
        method: Option<String>,
    },
    #[serde(rename = "unSubscribe", rename_all = "camelCase")]
    UnSubscribe {
        key: String,
        reg: RawJson,
        #[serde(default)]
        method: Option<String>,
    },
    #[serde(rename = "subscribe_result", rename_all = "camelCase")]
    SubscribeResult {
        key: String,
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        end: Option<String>,
    },
    #[serde(rename = "subscribe_result_res")]
    SubscribeResultRes {},
    #[serde(rename = "heartbeat")]
    Heartbeat {},
    #[serde(rename = "heartbeat_res")]
    HeartbeatRes {},
}

impl From<Wire> for ConnObject {
    fn from(wire: Wire) -> Self {
        match wire {
            Wire::RegisterChannel {
                channel_name,
                fingerprint,
                codec,
                pid,
            } => ConnObject::RegisterChannel {
                channel_name,
                fingerprint,
                codec,
                pid,
            },
            Wire::RegisterChannelRes {
                success,
                epoch,
                code,
                error,
                push_ack,
            } => ConnObject::RegisterChannelRes {
                success,
                epoch,
                code,
                error,
                push_ack,
            },
            Wire::Invoke {
                method,
                arg_length,
                oneway,
            } => ConnObject::Invoke {
                method,
                arg_length,
                oneway,
            },
            Wire::InvokeResult { success, fault } => ConnObject::InvokeResult { success, fault },
            Wire::Subscribe { key, reg, method } => ConnObject::Subscribe { key, reg, method },
            Wire::UnSubscribe { key, reg, method } => ConnObject::UnSubscribe { key, reg, method },
            Wire::SubscribeResult { key, method, end } => {
                ConnObject::SubscribeResult { key, method, end }
            }
            Wire::SubscribeResultRes {} => ConnObject::SubscribeResultRes {},
            Wire::Heartbeat {} => ConnObject::Heartbeat {},
            Wire::HeartbeatRes {} => ConnObject::HeartbeatRes {},
        }
    }
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
