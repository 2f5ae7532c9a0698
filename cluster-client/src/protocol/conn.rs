//! The connection object: the JSON text between the header and the application object.
//!
//! Its JSON is exactly the original package's (`"type":"register_channel"`, `"channelName"`,
//! `"argLength"`, `"unSubscribe"`, …). Fields this crate adds are optional and left out when unset, so
//! a packet of the original re-encodes to the same bytes. Unknown fields are ignored; an unknown `type`
//! is [`ProtocolError::UnknownType`].

use std::fmt;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        let text = std::str::from_utf8(bytes)
            .map_err(|source| ProtocolError::ConnObjectUtf8 { source })?;
        serde_json::from_str(text).map_err(|source| unknown_type(text).unwrap_or(ProtocolError::ConnObjectJson { source }))
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
