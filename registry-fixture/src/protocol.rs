//! The registry wire: line-delimited JSON.
//!
//! Every message is one JSON object on one `\n`-terminated line. A request line longer than
//! [`MAX_LINE_LEN`] bytes, or one that is not a JSON object with a numeric `id`, closes the
//! connection (blank lines are ignored).
//!
//! Client → server, each with `"id": u64` and `"op"`:
//!
//! | op | fields | answer |
//! | --- | --- | --- |
//! | `lookup` | `service` | `{"id","ok":[Endpoint]}` |
//! | `register` | `service`, `endpoint` | `{"id","ok":null}`; watchers get an update |
//! | `deregister` | `service`, `endpoint` | `{"id","ok":null}`; watchers get an update |
//! | `watch` | `service` | `{"id","ok":null}`, then an update with the current value, then one per change |
//! | `unwatch` | `service` | `{"id","ok":null}` |
//! | `stats` | | `{"id","ok":{"live_connections","total_connections","watches":{svc:n}}}` |
//! | `echo` | `payload` (string) | `{"id","ok":payload}` |
//!
//! An unknown op or a missing field is answered `{"id","error":"..."}` and the connection stays
//! open. Server pushes: `{"event":"update","service":..,"endpoints":[..],"version":u64}`.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// The longest request line the server accepts, `\n` excluded: 64 KiB. A longer one closes the
/// connection.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// The longest line the client accepts from the server, `\n` excluded: 16 MiB (an update of a
/// large service may exceed [`MAX_LINE_LEN`]).
pub const MAX_SERVER_LINE_LEN: usize = 16 * 1024 * 1024;

/// One instance of a service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A snapshot of the server's counters, as `stats` answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections open now.
    pub live_connections: usize,
    /// Connections accepted since the server started.
    pub total_connections: usize,
    /// For each watched service, how many connections watch it (services nobody watches are absent).
    pub watches: BTreeMap<String, usize>,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The endpoints of `service` (empty if unknown).
    Lookup {
        /// The service name.
        service: String,
    },
    /// Add `endpoint` to `service`.
    Register {
        /// The service name.
        service: String,
        /// The endpoint to add.
        endpoint: Endpoint,
    },
    /// Remove `endpoint` from `service`.
    Deregister {
        /// The service name.
        service: String,
        /// The endpoint to remove.
        endpoint: Endpoint,
    },
    /// Receive the value of `service` now and on every change.
    Watch {
        /// The service name.
        service: String,
    },
    /// Stop receiving updates of `service`.
    Unwatch {
        /// The service name.
        service: String,
    },
    /// The server's [`Stats`].
    Stats,
    /// Answer `payload` unchanged (for benchmarks).
    Echo {
        /// The text to send back.
        payload: String,
    },
}

impl Op {
    /// The `op` field of this request.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Lookup { .. } => "lookup",
            Op::Register { .. } => "register",
            Op::Deregister { .. } => "deregister",
            Op::Watch { .. } => "watch",
            Op::Unwatch { .. } => "unwatch",
            Op::Stats => "stats",
            Op::Echo { .. } => "echo",
        }
    }
}

/// A client request: an id, chosen by the client and echoed in the answer, and an [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Matches the answer to the request.
    pub id: u64,
    /// What is asked.
    pub op: Op,
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("op", self.op.name())?;
        match &self.op {
            Op::Lookup { service } | Op::Watch { service } | Op::Unwatch { service } => {
                map.serialize_entry("service", service)?;
            }
            Op::Register { service, endpoint } | Op::Deregister { service, endpoint } => {
                map.serialize_entry("service", service)?;
                map.serialize_entry("endpoint", endpoint)?;
            }
            Op::Echo { payload } => map.serialize_entry("payload", payload)?,
            Op::Stats => {}
        }
        map.end()
    }
}

/// Why a request line could not be turned into a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a JSON object with a numeric `id`: the server closes the connection.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A well-formed request the server cannot serve (unknown op, missing or bad field):
    /// answered with an error, the connection stays open.
    #[error("bad request {id}: {message}")]
    BadRequest {
        /// The request's id.
        id: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// The fields a request may carry; which are required depends on `op`.
#[derive(Deserialize)]
struct RawRequest {
    id: u64,
    op: String,
    service: Option<String>,
    endpoint: Option<Endpoint>,
    payload: Option<String>,
}

/// Just the id, to answer a request whose other fields do not parse.
#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

impl Request {
    /// Parses one request line (without its `\n`).
    pub fn parse(line: &[u8]) -> Result<Request, ParseError> {
        let raw: RawRequest = match serde_json::from_slice(line) {
            Ok(raw) => raw,
            Err(err) => {
                return match serde_json::from_slice::<IdOnly>(line) {
                    Ok(IdOnly { id }) => Err(ParseError::BadRequest {
                        id,
                        message: err.to_string(),
                    }),
                    Err(_) => Err(ParseError::Malformed(err.to_string())),
                };
            }
        };
        let id = raw.id;
        let bad = |message: String| ParseError::BadRequest { id, message };
        let need = |field: Option<String>, name: &str| {
            field.ok_or_else(|| bad(format!("op `{}` needs the field `{name}`", raw.op)))
        };
        let op = match raw.op.as_str() {
            "lookup" => Op::Lookup {
                service: need(raw.service, "service")?,
            },
            "watch" => Op::Watch {
                service: need(raw.service, "service")?,
            },
            "unwatch" => Op::Unwatch {
                service: need(raw.service, "service")?,
            },
            "register" | "deregister" => {
                let service = need(raw.service, "service")?;
                let endpoint = raw
                    .endpoint
                    .ok_or_else(|| bad(format!("op `{}` needs the field `endpoint`", raw.op)))?;
                if raw.op == "register" {
                    Op::Register { service, endpoint }
                } else {
                    Op::Deregister { service, endpoint }
                }
            }
            "stats" => Op::Stats,
            "echo" => Op::Echo {
                payload: need(raw.payload, "payload")?,
            },
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(bad(format!("unknown op `{shown}`")));
            }
        };
        Ok(Request { id, op })
    }

    /// This request as one line, `\n` included.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self).unwrap_or_else(|_| {
            // Unreachable with these types (string keys only); keep the id so the caller
            // gets an answer rather than a hang.
            format!("{{\"id\":{},\"op\":\"invalid\"}}\n", self.id).into_bytes()
        })
    }
}

/// A pushed update of one watched service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The service that changed.
    pub service: String,
    /// Its endpoints now.
    pub endpoints: Vec<Endpoint>,
    /// Its version: 0 for a service never set, then one more per change.
    pub version: u64,
}

impl Serialize for Update {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("event", "update")?;
        map.serialize_entry("service", &self.service)?;
        map.serialize_entry("endpoints", &self.endpoints)?;
        map.serialize_entry("version", &self.version)?;
        map.end()
    }
}

impl Update {
    /// This update as one line, `\n` included.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self).unwrap_or_else(|_| {
            format!(
                "{{\"event\":\"update\",\"service\":\"\",\"endpoints\":[],\"version\":{}}}\n",
                self.version
            )
            .into_bytes()
        })
    }
}

#[derive(Serialize)]
struct OkLine<'a, T> {
    id: u64,
    ok: &'a T,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    id: u64,
    error: &'a str,
}

/// The line answering request `id` with `value`, `\n` included.
pub fn ok_line<T: Serialize>(id: u64, value: &T) -> Vec<u8> {
    to_line(&OkLine { id, ok: value })
        .unwrap_or_else(|err| error_line(id, &format!("cannot encode the answer: {err}")))
}

/// The line answering request `id` with the error `message`, `\n` included.
pub fn error_line(id: u64, message: &str) -> Vec<u8> {
    to_line(&ErrorLine { id, error: message })
        .unwrap_or_else(|_| format!("{{\"id\":{id},\"error\":\"internal error\"}}\n").into_bytes())
}

fn to_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(128);
    serde_json::to_writer(&mut line, value)?;
    line.push(b'\n');
    Ok(line)
}

/// A message from the server to a client.
#[derive(Debug)]
pub enum ServerMessage {
    /// The answer to request `id`: the raw JSON of `ok`, or the text of `error`.
    Reply {
        /// The request's id.
        id: u64,
        /// `Ok(raw ok value)` or `Err(error message)`.
        result: Result<Box<RawValue>, String>,
    },
    /// A pushed update of a watched service.
    Update(Update),
}

#[derive(Deserialize)]
struct RawServerMessage {
    id: Option<u64>,
    ok: Option<Box<RawValue>>,
    error: Option<String>,
    event: Option<String>,
    service: Option<String>,
    endpoints: Option<Vec<Endpoint>>,
    version: Option<u64>,
}

impl ServerMessage {
    /// Parses one server line (without its `\n`).
    pub fn parse(line: &[u8]) -> Result<ServerMessage, String> {
        let raw: RawServerMessage = serde_json::from_slice(line).map_err(|err| err.to_string())?;
        if let Some(event) = raw.event {
            return match (event.as_str(), raw.service, raw.endpoints, raw.version) {
                ("update", Some(service), Some(endpoints), Some(version)) => {
                    Ok(ServerMessage::Update(Update {
                        service,
                        endpoints,
                        version,
                    }))
                }
                _ => Err(format!("unexpected event `{event}` or missing fields")),
            };
        }
        let id = raw.id.ok_or("a message with neither `id` nor `event`")?;
        let result = match raw.error {
            Some(message) => Err(message),
            // `"ok": null` deserialises as `None`.
            None => Ok(raw.ok.unwrap_or_else(|| RawValue::NULL.to_owned())),
        };
        Ok(ServerMessage::Reply { id, result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let ops = [
            Op::Lookup {
                service: "a".into(),
            },
            Op::Register {
                service: "a".into(),
                endpoint: Endpoint::new("h", 1),
            },
            Op::Deregister {
                service: "a".into(),
                endpoint: Endpoint::new("h", 1),
            },
            Op::Watch {
                service: "a".into(),
            },
            Op::Unwatch {
                service: "a".into(),
            },
            Op::Stats,
            Op::Echo {
                payload: "x\ny".into(),
            },
        ];
        for (id, op) in ops.into_iter().enumerate() {
            let request = Request { id: id as u64, op };
            let line = request.to_line();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(Request::parse(&line[..line.len() - 1]), Ok(request));
        }
    }

    #[test]
    fn bad_requests_keep_their_id() {
        assert!(matches!(
            Request::parse(br#"{"id":3,"op":"nope"}"#),
            Err(ParseError::BadRequest { id: 3, .. })
        ));
        assert!(matches!(
            Request::parse(br#"{"id":4,"op":"lookup"}"#),
            Err(ParseError::BadRequest { id: 4, .. })
        ));
        assert!(matches!(
            Request::parse(
                br#"{"id":5,"op":"register","service":"s","endpoint":{"host":"h","port":70000}}"#
            ),
            Err(ParseError::BadRequest { id: 5, .. })
        ));
        assert!(matches!(
            Request::parse(b"nonsense"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            Request::parse(br#"{"op":"stats"}"#),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            Request::parse(b"[1,2]"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn server_messages_parse() {
        let line = ok_line(9, &serde_json::Value::Null);
        match ServerMessage::parse(&line[..line.len() - 1]) {
            Ok(ServerMessage::Reply {
                id: 9,
                result: Ok(raw),
            }) => assert_eq!(raw.get(), "null"),
            other => panic!("unexpected {other:?}"),
        }
        let line = error_line(2, "boom");
        assert!(matches!(
            ServerMessage::parse(&line[..line.len() - 1]),
            Ok(ServerMessage::Reply { id: 2, result: Err(message) }) if message == "boom"
        ));
        let update = Update {
            service: "s".into(),
            endpoints: vec![Endpoint::new("h", 2)],
            version: 7,
        };
        let line = update.to_line();
        assert!(matches!(
            ServerMessage::parse(&line[..line.len() - 1]),
            Ok(ServerMessage::Update(u)) if u == update
        ));
        assert!(ServerMessage::parse(b"{}").is_err());
    }
}
