//! Property tests of the wire: packets round-trip, streams split anywhere decode in order, arbitrary
//! bytes never panic or over-allocate, oversized or negative lengths fail on the header alone, and the
//! invoke-argument framing round-trips and fails with the right error.

use bytes::{BufMut, Bytes, BytesMut};
use cluster_client::protocol::args::{Args, push_arg, push_arg_with};
use cluster_client::protocol::conn::{
    ChannelStats, ChannelStatsRes, Heartbeat, HeartbeatRes, Invoke, InvokeResult, LeaderLeaving,
    RegisterChannel, RegisterChannelRes, Subscribe, SubscribeReady, SubscribeResult,
    SubscribeResultRes, UnSubscribe,
};
use cluster_client::protocol::{
    ConnObject, HEADER_LEN, Header, Kind, Packet, PacketCodec, ProtocolError, RawJson, VERSION,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// The frame limit used for arbitrary input.
const LIMIT: usize = 256;

// ---- strategies -------------------------------------------------------------------------------------

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Request), Just(Kind::Response)]
}

fn text() -> impl Strategy<Value = String> {
    // Mostly short, with JSON-significant characters, controls and non-ASCII mixed in.
    prop_oneof![
        "[a-zA-Z0-9_$]{0,12}",
        "[\"\\\\/\\x00-\\x1f{}\\[\\]:, é😀\u{2028}]{0,8}",
        any::<String>(),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

/// A refusal or fault code: a known one (of either kind) or any text, which a code keeps as it is.
fn opt_code<C: From<String> + std::fmt::Debug>() -> impl Strategy<Value = Option<C>> {
    option::of(prop_oneof![
        "schema_mismatch|codec_mismatch|too_many_connections|factory_failed|unknown_channel",
        "unknown_method|bad_arguments|encode_failed|panicked|overloaded",
        text(),
    ])
    .prop_map(|code| code.map(C::from))
}

fn raw_json() -> impl Strategy<Value = RawJson> {
    prop_oneof![
        text().prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<i64>().prop_map(|n| serde_json::to_string(&n).unwrap()),
        any::<f64>().prop_map(|n| serde_json::to_string(&n).unwrap()),
        vec(any::<u32>(), 0..4).prop_map(|v| serde_json::to_string(&v).unwrap()),
        (text(), any::<bool>())
            .prop_map(|(k, v)| serde_json::json!({ "dataId": k, "on": v }).to_string()),
    ]
    .prop_map(|json| RawJson::new(json).expect("serde_json output is JSON"))
}

fn conn_object() -> impl Strategy<Value = ConnObject> {
    prop_oneof![
        (
            (text(), opt_text(), opt_text(), option::of(any::<u32>())),
            (opt_text(), opt_text())
        )
            .prop_map(
                |((channel_name, fingerprint, codec, pid), (nonce, proof))| {
                    ConnObject::RegisterChannel(RegisterChannel {
                        channel_name,
                        fingerprint,
                        codec,
                        pid,
                        nonce,
                        proof,
                    })
                }
            ),
        (
            (
                option::of(any::<bool>()),
                option::of(any::<u64>()),
                opt_code(),
                opt_text(),
                option::of(any::<bool>())
            ),
            (
                opt_text(),
                opt_text(),
                option::of(any::<u32>()),
                option::of(any::<u64>())
            )
        )
            .prop_map(
                |(
                    (success, epoch, code, error, push_ack),
                    (nonce, proof, leader_pid, leader_since),
                )| {
                    ConnObject::RegisterChannelRes(RegisterChannelRes {
                        success,
                        epoch,
                        code,
                        error,
                        push_ack,
                        nonce,
                        proof,
                        leader_pid,
                        leader_since,
                    })
                }
            ),
        (text(), any::<u32>(), any::<bool>()).prop_map(|(method, arg_length, oneway)| {
            ConnObject::Invoke(Invoke {
                method,
                arg_length,
                oneway,
            })
        }),
        (any::<bool>(), opt_code())
            .prop_map(|(success, fault)| ConnObject::InvokeResult(InvokeResult { success, fault })),
        (text(), raw_json(), opt_text())
            .prop_map(|(key, reg, method)| ConnObject::Subscribe(Subscribe { key, reg, method })),
        (text(), raw_json(), opt_text()).prop_map(|(key, reg, method)| ConnObject::UnSubscribe(
            UnSubscribe { key, reg, method }
        )),
        (
            text(),
            opt_text(),
            opt_text(),
            any::<bool>(),
            any::<Option<i64>>()
        )
            .prop_map(|(key, method, end, typed, request)| {
                ConnObject::SubscribeResult(SubscribeResult {
                    key,
                    method,
                    end,
                    typed,
                    request,
                })
            }),
        (text(), text(), any::<Option<i64>>()).prop_map(|(key, method, request)| {
            ConnObject::SubscribeReady(SubscribeReady {
                key,
                method,
                request,
            })
        }),
        Just(ConnObject::SubscribeResultRes(SubscribeResultRes {})),
        Just(ConnObject::Heartbeat(Heartbeat {})),
        Just(ConnObject::HeartbeatRes(HeartbeatRes {})),
        any::<bool>().prop_map(|resigned| ConnObject::LeaderLeaving(LeaderLeaving { resigned })),
        Just(ConnObject::ChannelStats(ChannelStats {})),
        Just(ConnObject::ChannelStatsRes(ChannelStatsRes {})),
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        kind(),
        any::<u16>(),
        any::<i64>(),
        any::<i32>(),
        conn_object(),
        vec(any::<u8>(), 0..200),
    )
        .prop_map(|(kind, reserved, id, timeout, conn, app)| Packet {
            kind,
            reserved,
            id,
            timeout,
            conn,
            app: Bytes::from(app),
        })
}

/// A header with any field values, lengths included (negative ones too), as raw bytes.
fn raw_header(
    version: u8,
    kind: u8,
    reserved: u16,
    id: i64,
    timeout: i32,
    conn: i32,
    app: i32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.put_u8(version);
    out.put_u8(kind);
    out.put_u16(reserved);
    out.put_i64(id);
    out.put_i32(timeout);
    out.put_i32(conn);
    out.put_i32(app);
    out
}

/// Bytes that a decoder may meet: noise, a plausible header with noise behind it, or an encoded
/// packet with some bytes overwritten.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..400),
        (
            prop_oneof![Just(VERSION), any::<u8>()],
            0u8..3,
            any::<u16>(),
            any::<i64>(),
            any::<i32>(),
            prop_oneof![-3i32..300, any::<i32>()],
            prop_oneof![-3i32..300, any::<i32>()],
            vec(any::<u8>(), 0..400),
        )
            .prop_map(|(v, k, r, id, t, c, a, tail)| {
                let mut bytes = raw_header(v, k, r, id, t, c, a);
                bytes.extend_from_slice(&tail);
                bytes
            }),
        (
            vec(packet(), 1..4),
            vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)
        )
            .prop_map(|(packets, edits)| {
                let mut buf = BytesMut::new();
                for p in &packets {
                    p.encode(&mut buf).unwrap();
                }
                let mut bytes = buf.to_vec();
                for (at, byte) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                bytes
            }),
    ]
}

// ---- helpers ----------------------------------------------------------------------------------------

/// Feeds `bytes` (in a buffer whose capacity is exactly its length) to a `PacketCodec` with limit
/// [`LIMIT`] until it errs or wants more bytes, checking after every call that the buffer's
/// capacity is at most `max(initial capacity, LIMIT)`.
///
/// That is the bound asserted: a decoder never grows a buffer past one whole frame of the limit,
/// whatever the header claims (a partial frame gets room for exactly itself, no amortised doubling).
fn decode_all(bytes: &[u8]) -> Result<Vec<Packet>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let initial = buf.capacity();
    assert_eq!(initial, bytes.len(), "test set-up: capacity == len");
    let bound = initial.max(LIMIT);
    let mut codec = PacketCodec::new(LIMIT);
    let mut packets = Vec::new();
    // Every decoded frame takes at least HEADER_LEN bytes.
    for _ in 0..=bytes.len() / HEADER_LEN {
        let result = codec.decode(&mut buf);
        assert!(
            buf.capacity() <= bound,
            "capacity {} > max(initial {initial}, limit {LIMIT}) after {result:?}",
            buf.capacity()
        );
        match result? {
            Some(packet) => {
                assert!(
                    packet.app.len() + HEADER_LEN <= LIMIT,
                    "a frame over the limit was decoded"
                );
                packets.push(packet);
            }
            None => return Ok(packets),
        }
    }
    panic!("decoder produced more frames than the input holds");
}

fn encode_all(packets: &[Packet]) -> BytesMut {
    let mut codec = PacketCodec::default();
    let mut buf = BytesMut::new();
    for p in packets {
        codec.encode(p, &mut buf).unwrap();
    }
    buf
}

// ---- (a) one packet round-trips ---------------------------------------------------------------------

proptest! {
    #[test]
    fn packet_round_trips(packet in packet()) {
        let mut buf = BytesMut::new();
        packet.encode(&mut buf).unwrap();

        let header = Header::parse(&buf).unwrap();
        prop_assert_eq!(buf[0], VERSION);
        prop_assert_eq!(header.kind, packet.kind);
        prop_assert_eq!(header.reserved, packet.reserved);
        prop_assert_eq!(header.id, packet.id);
        prop_assert_eq!(header.timeout, packet.timeout);
        prop_assert_eq!(header.app_len as usize, packet.app.len());
        prop_assert_eq!(header.frame_len(), buf.len() as u64);
        let conn_json = packet.conn.to_json().unwrap();
        prop_assert_eq!(header.conn_len as usize, conn_json.len());
        prop_assert_eq!(&buf[HEADER_LEN..HEADER_LEN + conn_json.len()], conn_json.as_bytes());

        let decoded = Packet::decode(buf.clone().freeze()).unwrap();
        prop_assert_eq!(&decoded, &packet);

        // The same through the stream codec, and a prefix is not a frame.
        let mut stream = buf.clone();
        let via_codec = PacketCodec::default().decode(&mut stream).unwrap();
        prop_assert_eq!(via_codec.as_ref(), Some(&packet));
        prop_assert!(stream.is_empty());
        let short = buf.len() - 1;
        let is_frame_length_error = matches!(
            Packet::decode(buf.clone().freeze().slice(..short)),
            Err(ProtocolError::FrameLength { .. } | ProtocolError::ShortHeader { .. })
        );
        prop_assert!(is_frame_length_error);
    }

    #[test]
    fn conn_object_round_trips(conn in conn_object()) {
        let json = conn.to_json().unwrap();
        prop_assert_eq!(ConnObject::parse(json.as_bytes()).unwrap(), conn.clone());
        prop_assert_eq!(serde_json::from_str::<ConnObject>(&json).unwrap(), conn);
    }
}

// ---- (b) a stream of packets, cut anywhere ----------------------------------------------------------

proptest! {
    #[test]
    fn stream_in_arbitrary_chunks(
        packets in vec(packet(), 1..6),
        chunks in vec(1usize..80, 1..20),
    ) {
        let stream = encode_all(&packets);
        let mut codec = PacketCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for size in chunks.iter().cycle() {
            if at == stream.len() {
                break;
            }
            let end = (at + size).min(stream.len());
            buf.extend_from_slice(&stream[at..end]);
            at = end;
            while let Some(packet) = codec.decode(&mut buf).unwrap() {
                got.push(packet);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, packets);
    }
}

// ---- (c) arbitrary bytes ----------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_or_overallocate(bytes in hostile_bytes()) {
        let _ = decode_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_cut_at_every_length(bytes in hostile_bytes()) {
        let whole = decode_all(&bytes);
        for len in 0..bytes.len() {
            match decode_all(&bytes[..len]) {
                // A prefix yields a prefix of the frames...
                Ok(frames) => {
                    if let Ok(all) = &whole {
                        prop_assert!(frames.len() <= all.len());
                        prop_assert_eq!(&frames[..], &all[..frames.len()]);
                    }
                }
                // ...or fails where the whole input fails (errors come from bytes already there).
                Err(_) => prop_assert!(whole.is_err(), "prefix {} failed, whole input did not", len),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_as_whole_frame(bytes in hostile_bytes()) {
        // Packet::decode on any slice: Ok or Err, never a panic, and Ok only for an exact frame.
        if let Ok(packet) = Packet::decode(Bytes::from(bytes.clone())) {
            let mut out = BytesMut::new();
            packet.encode(&mut out).unwrap();
            prop_assert_eq!(Header::parse(&out).unwrap().app_len as usize, packet.app.len());
        }
    }

    #[test]
    fn arbitrary_conn_object_bytes(bytes in vec(any::<u8>(), 0..64)) {
        match ConnObject::parse(&bytes) {
            Ok(_)
            | Err(ProtocolError::ConnObjectUtf8 { .. })
            | Err(ProtocolError::ConnObjectJson { .. })
            | Err(ProtocolError::UnknownType { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }
}

// ---- (d) huge or negative lengths fail on the header alone ------------------------------------------

fn header_with(conn: i32, app: i32) -> BytesMut {
    BytesMut::from(&raw_header(VERSION, 0, 0, 1, 3000, conn, app)[..])
}

#[test]
fn huge_conn_length_is_refused_from_the_header() {
    for (conn, app) in [
        (0x7fff_ffff, 0),
        (0, 0x7fff_ffff),
        (0x7fff_ffff, 0x7fff_ffff),
        (LIMIT as i32 - HEADER_LEN as i32 + 1, 0),
        (200, 200),
    ] {
        let mut buf = header_with(conn, app);
        assert_eq!(buf.len(), HEADER_LEN);
        let capacity = buf.capacity();
        let expected = HEADER_LEN as u64 + conn as u64 + app as u64;
        match PacketCodec::new(LIMIT).decode(&mut buf) {
            Err(ProtocolError::FrameTooLarge { size, limit }) => {
                assert_eq!(size, expected);
                assert_eq!(limit, LIMIT);
            }
            other => panic!("({conn}, {app}): expected FrameTooLarge, got {other:?}"),
        }
        assert_eq!(
            buf.capacity(),
            capacity,
            "nothing reserved for a refused frame"
        );
        assert_eq!(buf.len(), HEADER_LEN, "nothing consumed");
        // The default 8 MiB limit refuses 2 GiB just the same.
        let mut buf = header_with(conn, app);
        if expected > cluster_client::protocol::DEFAULT_MAX_FRAME_SIZE as u64 {
            assert!(matches!(
                PacketCodec::default().decode(&mut buf),
                Err(ProtocolError::FrameTooLarge { .. })
            ));
            assert_eq!(buf.capacity(), capacity);
        }
    }
}

#[test]
fn negative_lengths_are_refused_from_the_header() {
    for (conn, app, field, value) in [
        (-1, 0, "connection object", -1),
        (i32::MIN, 0, "connection object", i32::MIN),
        (20, -5, "application object", -5),
        (-2, -3, "connection object", -2),
    ] {
        let mut buf = header_with(conn, app);
        let capacity = buf.capacity();
        match PacketCodec::new(LIMIT).decode(&mut buf) {
            Err(ProtocolError::NegativeLength { field: f, value: v }) => {
                assert_eq!((f, v), (field, value));
            }
            other => panic!("({conn}, {app}): expected NegativeLength, got {other:?}"),
        }
        assert_eq!(
            buf.capacity(),
            capacity,
            "nothing reserved for a refused frame"
        );
    }
}

#[test]
fn partial_frame_reserves_exactly_up_to_the_limit() {
    // A frame of exactly the limit, announced by a bare header: room for it, not more.
    let mut buf = header_with((LIMIT - HEADER_LEN) as i32, 0);
    assert!(PacketCodec::new(LIMIT).decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= LIMIT);
    assert!(
        buf.capacity() <= LIMIT,
        "capacity {} over the limit",
        buf.capacity()
    );
}

#[test]
fn bad_version_and_kind() {
    let mut buf = BytesMut::from(&raw_header(2, 0, 0, 1, 0, 0, 0)[..]);
    assert!(matches!(
        PacketCodec::new(LIMIT).decode(&mut buf),
        Err(ProtocolError::BadVersion {
            found: 2,
            expected: VERSION
        })
    ));
    let mut buf = BytesMut::from(&raw_header(VERSION, 7, 0, 1, 0, 0, 0)[..]);
    assert!(matches!(
        PacketCodec::new(LIMIT).decode(&mut buf),
        Err(ProtocolError::BadKind { found: 7 })
    ));
    assert!(matches!(
        Header::parse(&[1; 23]),
        Err(ProtocolError::ShortHeader { len: 23 })
    ));
}

#[test]
fn encoder_refuses_frames_over_the_limit() {
    let packet = Packet::request(
        1,
        0,
        ConnObject::Heartbeat(Heartbeat {}),
        Bytes::from(vec![0; LIMIT]),
    );
    let mut buf = BytesMut::from(&b"kept"[..]);
    assert!(matches!(
        PacketCodec::new(LIMIT).encode(&packet, &mut buf),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    assert_eq!(
        &buf[..],
        b"kept",
        "a refused frame leaves the buffer as it was"
    );
}

// ---- (e) invoke-argument framing --------------------------------------------------------------------

proptest! {
    #[test]
    fn args_round_trip(args in vec(vec(any::<u8>(), 0..40), 0..8), with in vec(any::<bool>(), 8)) {
        let mut app = BytesMut::new();
        for (arg, with) in args.iter().zip(&with) {
            if *with {
                push_arg_with(&mut app, |out| {
                    out.extend_from_slice(arg);
                    Ok::<(), ()>(())
                })
                .unwrap();
            } else {
                push_arg(&mut app, arg);
            }
        }
        // A failing writer leaves the buffer as it was.
        let before = app.clone();
        let failed = push_arg_with(&mut app, |out| {
            out.extend_from_slice(b"partial");
            Err("no")
        });
        prop_assert_eq!(failed, Err("no"));
        prop_assert_eq!(&app, &before);

        let app = app.freeze();
        let count = args.len() as u32;
        let mut reader = Args::new(app.clone(), count);
        prop_assert_eq!(reader.declared(), count);
        for arg in &args {
            prop_assert_eq!(&reader.next_arg().unwrap()[..], &arg[..]);
        }
        let missing = matches!(
            reader.clone().next_arg(),
            Err(ProtocolError::ArgsMissing { index, count: c }) if index == count && c == count
        );
        prop_assert!(missing);
        reader.finish().unwrap();

        // The iterator gives the same, then ends.
        let via_iter: Vec<Bytes> = Args::new(app.clone(), count).map(Result::unwrap).collect();
        prop_assert_eq!(via_iter.len(), args.len());
        for (got, arg) in via_iter.iter().zip(&args) {
            prop_assert_eq!(&got[..], &arg[..]);
        }

        // Reading too few is ArgsUnread; declaring too few leaves ArgsTrailing.
        if count > 0 {
            let unread = matches!(
                Args::new(app.clone(), count).finish(),
                Err(ProtocolError::ArgsUnread { read: 0, count: c }) if c == count
            );
            prop_assert!(unread);
            let mut fewer = Args::new(app.clone(), count - 1);
            for _ in 1..count {
                fewer.next_arg().unwrap();
            }
            let extra = 4 + args.last().unwrap().len();
            let trailing = matches!(
                fewer.finish(),
                Err(ProtocolError::ArgsTrailing { count: c, extra: e }) if c == count - 1 && e == extra
            );
            prop_assert!(trailing);
        }
        // Declaring one more than there is overruns at the end.
        let mut more = Args::new(app.clone(), count + 1);
        for _ in 0..count {
            more.next_arg().unwrap();
        }
        let overrun = matches!(
            more.next_arg(),
            Err(ProtocolError::ArgsOverrun { index, declared: 4, remaining: 0 }) if index == count
        );
        prop_assert!(overrun);
    }

    #[test]
    fn args_from_arbitrary_bytes(bytes in vec(any::<u8>(), 0..64), count in 0u32..6) {
        let app = Bytes::from(bytes);
        let mut args = Args::new(app.clone(), count);
        let mut read = 0u32;
        let mut total = 0usize;
        let mut overran = false;
        loop {
            match args.next_arg() {
                Ok(arg) => {
                    read += 1;
                    total += 4 + arg.len();
                    prop_assert!(total <= app.len());
                }
                Err(ProtocolError::ArgsMissing { index, count: c }) => {
                    prop_assert_eq!(index, read);
                    prop_assert_eq!(c, count);
                    prop_assert_eq!(read, count);
                    break;
                }
                Err(ProtocolError::ArgsOverrun { index, declared, remaining }) => {
                    prop_assert_eq!(index, read);
                    prop_assert!(read < count);
                    let left = app.len() - total;
                    if left < 4 {
                        prop_assert_eq!((declared, remaining), (4, left));
                    } else {
                        prop_assert_eq!(remaining, left - 4);
                        prop_assert!(declared > remaining as u64);
                    }
                    // A broken framing stays broken: the same place is reported again.
                    let stays = matches!(
                        args.next_arg(),
                        Err(ProtocolError::ArgsOverrun { index: i, declared: d, remaining: r })
                            if i == index && d == declared && r == remaining
                    );
                    prop_assert!(stays);
                    overran = true;
                    break;
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        match args.finish() {
            Err(ProtocolError::ArgsOverrun { index, .. }) if overran => prop_assert_eq!(index, read),
            Ok(()) => prop_assert!(!overran && total == app.len()),
            Err(ProtocolError::ArgsTrailing { count: c, extra }) => {
                prop_assert_eq!(c, count);
                prop_assert_eq!(extra, app.len() - total);
                prop_assert!(extra > 0);
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }

        // The iterator never panics and ends.
        let items: Vec<_> = Args::new(app.clone(), count).collect();
        prop_assert!(items.len() <= count as usize + 1);
        // Finishing before reading every declared argument is ArgsUnread, whatever the bytes.
        if count > 0 {
            let unread = matches!(
                Args::new(app, count).finish(),
                Err(ProtocolError::ArgsUnread { read: 0, count: c }) if c == count
            );
            prop_assert!(unread);
        }
    }
}
