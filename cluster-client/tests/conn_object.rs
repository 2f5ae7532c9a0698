//! Connection objects: the exact JSON of every `type`, with and without the optional extension fields,
//! parsed back equal; unknown fields ignored; the three parse errors told apart.

use cluster_client::protocol::conn::{
    ChannelStats, ChannelStatsRes, Heartbeat, HeartbeatRes, Invoke, InvokeResult, RegisterChannel,
    RegisterChannelRes, Subscribe, SubscribeReady, SubscribeResult, SubscribeResultRes,
    UnSubscribe,
};
use cluster_client::protocol::{ConnObject, FaultCode, ProtocolError, RawJson, RefusalCode};

fn raw(json: &str) -> RawJson {
    RawJson::new(json.to_owned()).expect("valid JSON")
}

/// Encodes `conn`, checks the exact text, parses the text back and checks it is equal.
#[track_caller]
fn round_trip(conn: ConnObject, json: &str) {
    let text = conn.to_json().expect("encode");
    assert_eq!(text, json, "encoding of {conn:?}");
    let back = ConnObject::parse(text.as_bytes()).expect("parse");
    assert_eq!(back, conn, "parse of {text}");
    let type_name = serde_json::from_str::<serde_json::Value>(&text).unwrap()["type"].clone();
    assert_eq!(type_name, conn.type_name(), "type_name of {conn:?}");
}

#[test]
fn register_channel() {
    round_trip(
        ConnObject::RegisterChannel(RegisterChannel {
            channel_name: "EchoClient".into(),
            fingerprint: None,
            codec: None,
            pid: None,
            nonce: None,
            proof: None,
        }),
        r#"{"type":"register_channel","channelName":"EchoClient"}"#,
    );
    round_trip(
        ConnObject::RegisterChannel(RegisterChannel {
            channel_name: "EchoClient".into(),
            fingerprint: Some("00ff".into()),
            codec: Some("bincode".into()),
            pid: Some(4242),
            nonce: None,
            proof: None,
        }),
        r#"{"type":"register_channel","channelName":"EchoClient","fingerprint":"00ff","codec":"bincode","pid":4242}"#,
    );
    round_trip(
        ConnObject::RegisterChannel(RegisterChannel {
            channel_name: String::new(),
            fingerprint: None,
            codec: Some("json".into()),
            pid: None,
            nonce: None,
            proof: None,
        }),
        r#"{"type":"register_channel","channelName":"","codec":"json"}"#,
    );
}

#[test]
fn register_channel_res() {
    round_trip(
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: None,
            epoch: None,
            code: None,
            error: None,
            push_ack: None,
            nonce: None,
            proof: None,
            leader_pid: None,
            leader_since: None,
        }),
        r#"{"type":"register_channel_res"}"#,
    );
    round_trip(
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(false),
            epoch: Some(u64::MAX),
            code: Some(RefusalCode::CodecMismatch),
            error: Some("bincode vs json".into()),
            push_ack: Some(false),
            ..RegisterChannelRes::default()
        }),
        r#"{"type":"register_channel_res","success":false,"epoch":18446744073709551615,"code":"codec_mismatch","error":"bincode vs json","pushAck":false}"#,
    );
    round_trip(
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(true),
            epoch: Some(3),
            leader_pid: Some(4321),
            leader_since: Some(1_795_879_914_038),
            ..RegisterChannelRes::default()
        }),
        r#"{"type":"register_channel_res","success":true,"epoch":3,"leaderPid":4321,"leaderSince":1795879914038}"#,
    );
}

#[test]
fn stats() {
    round_trip(
        ConnObject::ChannelStats(ChannelStats {}),
        r#"{"type":"stats"}"#,
    );
    round_trip(
        ConnObject::ChannelStatsRes(ChannelStatsRes {}),
        r#"{"type":"stats_res"}"#,
    );
}

#[test]
fn invoke() {
    round_trip(
        ConnObject::Invoke(Invoke {
            method: "m".into(),
            arg_length: 2,
            oneway: false,
        }),
        r#"{"type":"invoke","method":"m","argLength":2,"oneway":false}"#,
    );
    round_trip(
        ConnObject::Invoke(Invoke {
            method: "fire".into(),
            arg_length: 0,
            oneway: true,
        }),
        r#"{"type":"invoke","method":"fire","argLength":0,"oneway":true}"#,
    );
}

#[test]
fn invoke_result() {
    round_trip(
        ConnObject::InvokeResult(InvokeResult {
            success: true,
            fault: None,
        }),
        r#"{"type":"invoke_result","success":true}"#,
    );
    round_trip(
        ConnObject::InvokeResult(InvokeResult {
            success: false,
            fault: Some(FaultCode::Overloaded),
        }),
        r#"{"type":"invoke_result","success":false,"fault":"overloaded"}"#,
    );
    // A fault this crate does not know is kept as it came.
    round_trip(
        ConnObject::InvokeResult(InvokeResult {
            success: false,
            fault: Some(FaultCode::Other("panic".into())),
        }),
        r#"{"type":"invoke_result","success":false,"fault":"panic"}"#,
    );
}

#[test]
fn codes_are_typed_and_unknown_ones_kept() {
    let text = r#"{"type":"register_channel_res","success":false,"code":"schema_mismatch"}"#;
    let Ok(ConnObject::RegisterChannelRes(RegisterChannelRes {
        code: Some(RefusalCode::SchemaMismatch),
        ..
    })) = ConnObject::parse(text.as_bytes())
    else {
        panic!("{text}: not a typed schema_mismatch");
    };
    round_trip(
        ConnObject::RegisterChannelRes(RegisterChannelRes {
            success: Some(false),
            code: Some(RefusalCode::Other("rate_limited".into())),
            ..RegisterChannelRes::default()
        }),
        r#"{"type":"register_channel_res","success":false,"code":"rate_limited"}"#,
    );
    // An escaped known code is the known code, and re-encodes plainly.
    let text = r#"{"type":"invoke_result","success":false,"fault":"p\u0061nicked"}"#;
    let conn = ConnObject::parse(text.as_bytes()).unwrap();
    assert_eq!(
        conn,
        ConnObject::InvokeResult(InvokeResult {
            success: false,
            fault: Some(FaultCode::Panicked),
        })
    );
    assert_eq!(
        conn.to_json().unwrap(),
        r#"{"type":"invoke_result","success":false,"fault":"panicked"}"#
    );
    for text in [
        r#"{"type":"invoke_result","success":false,"fault":1}"#,
        r#"{"type":"register_channel_res","code":["x"]}"#,
    ] {
        assert!(
            matches!(
                ConnObject::parse(text.as_bytes()),
                Err(ProtocolError::ConnObjectJson { .. })
            ),
            "{text}"
        );
    }
}

#[test]
fn subscribe() {
    round_trip(
        ConnObject::Subscribe(Subscribe {
            key: r#"$$inner$$__{"dataId":"vec.topic"}"#.into(),
            reg: raw(r#"{"dataId":"vec.topic"}"#),
            method: None,
        }),
        r#"{"type":"subscribe","key":"$$inner$$__{\"dataId\":\"vec.topic\"}","reg":{"dataId":"vec.topic"}}"#,
    );
    round_trip(
        ConnObject::Subscribe(Subscribe {
            key: "$$inner$$__7".into(),
            reg: raw("7"),
            method: Some("watch".into()),
        }),
        r#"{"type":"subscribe","key":"$$inner$$__7","reg":7,"method":"watch"}"#,
    );
}

#[test]
fn un_subscribe() {
    round_trip(
        ConnObject::UnSubscribe(UnSubscribe {
            key: r#"$$inner$$__{"dataId":"vec.topic"}"#.into(),
            reg: raw(r#"{"dataId":"vec.topic"}"#),
            method: None,
        }),
        r#"{"type":"unSubscribe","key":"$$inner$$__{\"dataId\":\"vec.topic\"}","reg":{"dataId":"vec.topic"}}"#,
    );
    round_trip(
        ConnObject::UnSubscribe(UnSubscribe {
            key: "$$inner$$__\"s\"".into(),
            reg: raw(r#""s""#),
            method: Some("watch".into()),
        }),
        r#"{"type":"unSubscribe","key":"$$inner$$__\"s\"","reg":"s","method":"watch"}"#,
    );
}

#[test]
fn subscribe_result() {
    round_trip(
        ConnObject::SubscribeResult(SubscribeResult {
            key: "$$inner$$__1".into(),
            method: None,
            end: None,
            typed: false,
            request: None,
        }),
        r#"{"type":"subscribe_result","key":"$$inner$$__1"}"#,
    );
    round_trip(
        ConnObject::SubscribeResult(SubscribeResult {
            key: "$$inner$$__1".into(),
            method: Some("watch".into()),
            end: Some("leader closed".into()),
            typed: false,
            request: Some(7),
        }),
        r#"{"type":"subscribe_result","key":"$$inner$$__1","method":"watch","end":"leader closed","request":7}"#,
    );
    round_trip(
        ConnObject::SubscribeResult(SubscribeResult {
            key: "$$inner$$__1".into(),
            method: Some("watch".into()),
            end: Some("connection reset".into()),
            typed: true,
            request: None,
        }),
        r#"{"type":"subscribe_result","key":"$$inner$$__1","method":"watch","end":"connection reset","typed":true}"#,
    );
    round_trip(
        ConnObject::SubscribeReady(SubscribeReady {
            key: "$$inner$$__1".into(),
            method: "watch".into(),
            request: Some(12),
        }),
        r#"{"type":"subscribe_ready","key":"$$inner$$__1","method":"watch","request":12}"#,
    );
}

#[test]
fn field_less_types() {
    round_trip(
        ConnObject::SubscribeResultRes(SubscribeResultRes {}),
        r#"{"type":"subscribe_result_res"}"#,
    );
    round_trip(
        ConnObject::Heartbeat(Heartbeat {}),
        r#"{"type":"heartbeat"}"#,
    );
    round_trip(
        ConnObject::HeartbeatRes(HeartbeatRes {}),
        r#"{"type":"heartbeat_res"}"#,
    );
}

#[test]
fn raw_json_keeps_its_text() {
    // Whitespace and key order inside `reg` survive a parse and re-encode.
    let text = r#"{"type":"subscribe","key":"k","reg":{ "b" : [1, 2],"a":null }}"#;
    let conn = ConnObject::parse(text.as_bytes()).unwrap();
    let ConnObject::Subscribe(Subscribe { reg, .. }) = &conn else {
        panic!("not a subscribe: {conn:?}");
    };
    assert_eq!(reg.get(), r#"{ "b" : [1, 2],"a":null }"#);
    assert_eq!(conn.to_json().unwrap(), text);
    assert!(RawJson::new("{".into()).is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let cases: [(&str, ConnObject); 5] = [
        (
            r#"{"future":1,"type":"heartbeat","nested":{"x":[1,2]}}"#,
            ConnObject::Heartbeat(Heartbeat {}),
        ),
        (
            r#"{"type":"invoke","method":"m","argLength":1,"oneway":true,"traceId":"abc","extra":null}"#,
            ConnObject::Invoke(Invoke {
                method: "m".into(),
                arg_length: 1,
                oneway: true,
            }),
        ),
        (
            r#"{"type":"register_channel","channelName":"C","someday":{"a":true}}"#,
            ConnObject::RegisterChannel(RegisterChannel {
                channel_name: "C".into(),
                fingerprint: None,
                codec: None,
                pid: None,
                nonce: None,
                proof: None,
            }),
        ),
        (
            r#"{"type":"subscribe_result_res","id":5}"#,
            ConnObject::SubscribeResultRes(SubscribeResultRes {}),
        ),
        (
            r#"{"type":"subscribe","key":"k","reg":[1],"priority":9}"#,
            ConnObject::Subscribe(Subscribe {
                key: "k".into(),
                reg: raw("[1]"),
                method: None,
            }),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            ConnObject::parse(text.as_bytes()).unwrap(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn unknown_type_is_reported() {
    for (text, found) in [
        (r#"{"type":"gossip"}"#, "gossip"),
        (r#"{"type":"invoke_v2","method":"m"}"#, "invoke_v2"),
        (r#"{"channelName":"x","type":"HEARTBEAT"}"#, "HEARTBEAT"),
        (r#"{"type":""}"#, ""),
    ] {
        match ConnObject::parse(text.as_bytes()) {
            Err(ProtocolError::UnknownType { found: f }) => assert_eq!(f, found, "{text}"),
            other => panic!("{text}: expected UnknownType, got {other:?}"),
        }
    }
    // A very long type name is cut to 64 characters.
    let long = "é".repeat(100);
    let text = format!(r#"{{"type":"{long}"}}"#);
    match ConnObject::parse(text.as_bytes()) {
        Err(ProtocolError::UnknownType { found }) => assert_eq!(found.chars().count(), 64),
        other => panic!("expected UnknownType, got {other:?}"),
    }
}

#[test]
fn bad_utf8_is_reported() {
    for bytes in [
        &b"\xff"[..],
        b"{\"type\":\"heartbeat\xc3\"}",
        b"{\"type\":\"register_channel\",\"channelName\":\"\xed\xa0\x80\"}",
    ] {
        match ConnObject::parse(bytes) {
            Err(ProtocolError::ConnObjectUtf8 { .. }) => {}
            other => panic!("{bytes:?}: expected ConnObjectUtf8, got {other:?}"),
        }
    }
}

#[test]
fn bad_json_is_reported() {
    for text in [
        "",
        "{",
        "null",
        "[]",
        r#""heartbeat""#,
        r#"{"type":1}"#,
        r#"{"kind":"heartbeat"}"#,
        r#"{"type":"heartbeat"} trailing"#,
        // Known types with missing or mistyped fields.
        r#"{"type":"invoke","method":"m"}"#,
        r#"{"type":"invoke","method":"m","argLength":-1,"oneway":false}"#,
        r#"{"type":"invoke","method":"m","argLength":"2","oneway":false}"#,
        r#"{"type":"invoke_result"}"#,
        r#"{"type":"register_channel"}"#,
        r#"{"type":"register_channel","channelName":"C","pid":"x"}"#,
        r#"{"type":"subscribe","key":"k"}"#,
    ] {
        match ConnObject::parse(text.as_bytes()) {
            Err(ProtocolError::ConnObjectJson { .. }) => {}
            other => panic!("{text}: expected ConnObjectJson, got {other:?}"),
        }
    }
}

#[test]
fn serde_deserialize_keeps_raw_json() {
    // Through `Deserialize` (not only `ConnObject::parse`): from text, inside a larger document, and
    // from a `serde_json::Value`. Regression: an internally tagged derive could not read `RawJson`.
    let text = r#"{"type":"unSubscribe","key":"k","reg":{"z":1, "a":[true]},"method":"watch"}"#;
    let expected = ConnObject::UnSubscribe(UnSubscribe {
        key: "k".into(),
        reg: raw(r#"{"z":1, "a":[true]}"#),
        method: Some("watch".into()),
    });
    assert_eq!(serde_json::from_str::<ConnObject>(text).unwrap(), expected);
    let list: Vec<ConnObject> =
        serde_json::from_str(&format!("[{text}, {{\"type\":\"heartbeat\"}}]")).unwrap();
    assert_eq!(list, [expected, ConnObject::Heartbeat(Heartbeat {})]);
    let value = serde_json::json!({"type": "subscribe", "key": "k", "reg": {"dataId": "d"}});
    assert_eq!(
        serde_json::from_value::<ConnObject>(value).unwrap(),
        ConnObject::Subscribe(Subscribe {
            key: "k".into(),
            reg: raw(r#"{"dataId":"d"}"#),
            method: None,
        })
    );
    assert!(serde_json::from_str::<ConnObject>(r#"{"type":"nope"}"#).is_err());
}
