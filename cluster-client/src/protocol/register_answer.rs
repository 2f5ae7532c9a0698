//! The application object of `register_channel_res`, as the Node package's leader sends it and its
//! followers read it: `{success}` when accepted, `{success: false, error: {name, message, code}}`
//! when refused. This crate's followers read the connection object instead; the application object
//! is for followers of the Node package, which always decode it.

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use super::RefusalCode;
use crate::transcode::{Codec, Transcode};

#[derive(Serialize)]
struct Answer<'a> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<AnswerError<'a>>,
}

/// Why a registration was refused, as a JavaScript error's fields.
#[derive(Serialize)]
struct AnswerError<'a> {
    name: &'a str,
    message: &'a str,
    code: &'a str,
}

/// The answer's application object in `codec`: accepted, or refused with `code` and `message`.
pub(crate) fn register_answer(codec: Codec, refusal: Option<(&RefusalCode, &str)>) -> Bytes {
    let answer = Answer {
        success: refusal.is_none(),
        error: refusal.map(|(code, message)| AnswerError {
            name: "ClusterClientRefusal",
            message,
            code: code.as_str(),
        }),
    };
    let mut app = BytesMut::new();
    if let Err(err) = codec.encode(&answer, &mut app) {
        tracing::debug!(error = %err, "the registration answer's application object");
        return Bytes::new();
    }
    app.freeze()
}

/// The codec of a registering follower: the one it names, else the Node package's (its followers
/// name none), else — a name this build does not know — none.
pub(crate) fn follower_codec(named: Option<&str>) -> Option<Codec> {
    match named {
        None => Some(Codec::SerializeJson),
        Some(name) => Codec::from_name(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal reads, in the Node package's codec, as the object its follower turns into an
    /// `Error`; an acceptance as `{success: true}`.
    #[test]
    fn a_node_follower_reads_the_answer() {
        let refused = register_answer(
            Codec::SerializeJson,
            Some((&RefusalCode::UnknownChannel, "no leader of channel `x`")),
        );
        let value: serde_json::Value = Codec::SerializeJson.decode(&refused).expect("decodes");
        assert_eq!(value["success"], false);
        assert_eq!(value["error"]["code"], "unknown_channel");
        assert_eq!(value["error"]["message"], "no leader of channel `x`");
        let accepted = register_answer(Codec::Json, None);
        assert_eq!(&accepted[..], br#"{"success":true}"#);
        assert_eq!(follower_codec(None), Some(Codec::SerializeJson));
        assert_eq!(follower_codec(Some("json")), Some(Codec::Json));
        assert_eq!(follower_codec(Some("nonsense")), None);
    }
}
