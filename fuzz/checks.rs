// The bodies of the fuzz targets, as plain functions of the input bytes. One copy serves both the
// cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, on nightly) and the corpus replay that CI runs on
// stable (`tests/fuzz_corpus.rs`): each `include!`s this file inside a `mod checks`.
// A check panics when a property fails; decoding itself must never panic.

use bytes::{Bytes, BytesMut};
use cluster_client::protocol::args::{Args, push_arg, push_arg_with};
use cluster_client::protocol::{
    ConnObject, HEADER_LEN, Header, Packet, PacketCodec, ProtocolError,
};
use tokio_util::codec::Decoder;

/// The frame limit of the decoder under test: small, so that the fuzzer reaches it.
pub const DECODER_LIMIT: usize = 64 * 1024;

/// What decoding a byte stream gave: the packets in order, the error that ended it (as text), and
/// how many bytes were left in the buffer at the end (0 when an error ended it early: how much was
/// buffered then depends on the chunking).
#[derive(Debug, PartialEq)]
pub struct StreamOutcome {
    pub packets: Vec<Packet>,
    pub error: Option<String>,
    pub leftover: usize,
}

/// `packet_decoder`: byte 0 picks how the rest is split into reads; the rest is a byte stream.
///
/// - [`PacketCodec`] with a 64 KiB limit gives the same packets and the same error whether the
///   stream arrives whole or in the chunks byte 0 picks;
/// - it never grows its buffer past the limit, and never hands out a frame larger than the limit;
/// - every packet it decodes re-encodes, decodes back equal, and re-encodes to the same bytes;
/// - [`Packet::decode`] on the whole rest agrees with the codec when it succeeds.
pub fn packet_decoder(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = decode_stream(stream, &mut std::iter::repeat(stream.len().max(1)));
    let chunked = decode_stream(stream, &mut chunk_sizes(split));
    assert_eq!(whole, chunked, "chunking changed what the codec decoded");
    for packet in &whole.packets {
        packet_round_trip(packet);
    }

    if let Ok(packet) = Packet::decode(Bytes::copy_from_slice(stream)) {
        packet_round_trip(&packet);
        if stream.len() <= DECODER_LIMIT {
            assert_eq!(
                whole.packets,
                [packet],
                "Packet::decode and the codec disagree"
            );
            assert_eq!(whole.error, None);
            assert_eq!(whole.leftover, 0);
        }
    }
}

/// Chunk sizes picked by one byte: below 128 a fixed size (1 to 128 bytes), else a pseudo-random
/// walk of sizes from 1 to 64 seeded by the byte.
fn chunk_sizes(split: u8) -> impl Iterator<Item = usize> {
    let mut state = u32::from(split) | 0x9e37_7900;
    std::iter::repeat_with(move || {
        if split < 128 {
            usize::from(split) + 1
        } else {
            // xorshift32
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 64) as usize + 1
        }
    })
}

/// Feeds `stream` to a fresh codec in chunks of the given sizes, decoding after each read as a
/// `FramedRead` would, then once more at end of stream.
pub fn decode_stream(stream: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> StreamOutcome {
    let mut codec = PacketCodec::new(DECODER_LIMIT);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    let mut rest = stream;
    let outcome = |packets, error: Option<ProtocolError>, buf: &BytesMut| StreamOutcome {
        packets,
        leftover: if error.is_some() { 0 } else { buf.len() },
        error: error.map(|e| e.to_string()),
    };
    while !rest.is_empty() {
        let size = sizes.next().expect("endless sizes").clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            let capacity = buf.capacity();
            let len = buf.len();
            let header = buf.get(..HEADER_LEN).and_then(|h| Header::parse(h).ok());
            match codec.decode(&mut buf) {
                Ok(Some(packet)) => {
                    let header = header.expect("a packet without a valid header");
                    let consumed = len - buf.len();
                    assert!(
                        consumed <= DECODER_LIMIT,
                        "a {consumed}-byte frame got through"
                    );
                    assert_eq!(consumed as u64, header.frame_len(), "frame length mismatch");
                    assert_eq!(packet.app.len(), header.app_len as usize);
                    assert_eq!(
                        (packet.kind, packet.reserved, packet.id, packet.timeout),
                        (header.kind, header.reserved, header.id, header.timeout)
                    );
                    packets.push(packet);
                }
                Ok(None) => {
                    assert!(
                        buf.capacity() <= capacity.max(DECODER_LIMIT),
                        "the codec grew its buffer from {capacity} to {} bytes",
                        buf.capacity()
                    );
                    assert_eq!(buf.len(), len, "the codec dropped bytes without a packet");
                    break;
                }
                Err(error) => {
                    check_decode_error(&error, len);
                    return outcome(packets, Some(error), &buf);
                }
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(packet)) => panic!("a packet appeared only at end of stream: {packet:?}"),
        Ok(None) => {
            assert!(buf.is_empty(), "bytes left but decode_eof gave no error");
            outcome(packets, None, &buf)
        }
        Err(error) => {
            assert!(
                !buf.is_empty(),
                "decode_eof failed on an empty buffer: {error}"
            );
            assert!(
                matches!(error, ProtocolError::Io(_)),
                "decode_eof: only leftover bytes can fail here, got {error}"
            );
            StreamOutcome {
                packets,
                error: Some(error.to_string()),
                leftover: buf.len(),
            }
        }
    }
}

/// A decoding error must match the bytes it names; `buffered` is how many bytes the decoder had.
fn check_decode_error(error: &ProtocolError, buffered: usize) {
    match error {
        ProtocolError::FrameTooLarge { size, limit } => {
            assert_eq!(*limit, DECODER_LIMIT);
            assert!(*size > DECODER_LIMIT as u64, "refused a {size}-byte frame");
        }
        ProtocolError::Io(e) => panic!("decode (not at end of stream) gave an i/o error: {e}"),
        ProtocolError::FrameLength { .. } | ProtocolError::ShortHeader { .. } => {
            panic!("the codec reported {error}, which only Packet::decode should")
        }
        _ => assert!(
            buffered >= HEADER_LEN,
            "an error before a whole header: {error}"
        ),
    }
}

/// A decoded packet encodes, decodes back equal, and encodes again to the same bytes.
pub fn packet_round_trip(packet: &Packet) {
    let mut first = BytesMut::new();
    packet
        .encode(&mut first)
        .unwrap_or_else(|e| panic!("a decoded packet does not re-encode: {e}; {packet:?}"));
    let first = first.freeze();
    let back = Packet::decode(first.clone())
        .unwrap_or_else(|e| panic!("a re-encoded packet does not decode: {e}; {packet:?}"));
    assert_eq!(
        &back, packet,
        "the packet changed through encode and decode"
    );
    let mut second = BytesMut::new();
    back.encode(&mut second).expect("encodes again");
    assert_eq!(second.freeze(), first, "encoding is not stable");
    let header = Header::parse(&first).expect("header of an encoded packet");
    assert_eq!(header.app_len as usize, packet.app.len());
}

/// `conn_object`: the input is a connection object's bytes.
///
/// - [`ConnObject::parse`] and serde's `Deserialize` (as used inside other JSON) agree;
/// - a parsed value writes as JSON that parses back equal and writes again to the same text, with
///   the right `type`;
/// - an error is the right kind: bad UTF-8 only for bad UTF-8, an unknown `type` cut to 64
///   characters and really unknown.
pub fn conn_object(data: &[u8]) {
    let parsed = ConnObject::parse(data);
    let via_serde = serde_json::from_slice::<ConnObject>(data);
    match (&parsed, &via_serde) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "ConnObject::parse and Deserialize disagree"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("ConnObject::parse gave {a:?} but Deserialize gave {b:?}"),
    }
    match parsed {
        Ok(conn) => {
            let json = conn
                .to_json()
                .unwrap_or_else(|e| panic!("{conn:?} does not write as JSON: {e}"));
            let again = ConnObject::parse(json.as_bytes())
                .unwrap_or_else(|e| panic!("its own JSON {json} does not parse: {e}"));
            assert_eq!(again, conn, "the value changed through {json}");
            assert_eq!(
                again.to_json().expect("writes again"),
                json,
                "writing is not stable"
            );
            // Not through serde_json::Value: `reg` is any valid JSON kept as text, and a number
            // such as 2E2121 is valid JSON that Value refuses ("number out of range").
            let tag = format!("{{\"type\":\"{}\"", conn.type_name());
            assert!(json.starts_with(&tag), "wrong type in {json}");
        }
        Err(ProtocolError::ConnObjectUtf8 { .. }) => {
            assert!(
                std::str::from_utf8(data).is_err(),
                "valid UTF-8 reported as bad"
            );
        }
        Err(ProtocolError::ConnObjectJson { .. }) => {
            assert!(
                std::str::from_utf8(data).is_ok(),
                "bad UTF-8 reported as bad JSON"
            );
        }
        Err(ProtocolError::UnknownType { found }) => {
            assert!(found.chars().count() <= 64, "type not cut: {found:?}");
            let known = [
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
            assert!(
                !known.contains(&found.as_str()),
                "known type {found:?} called unknown"
            );
        }
        Err(other) => panic!("ConnObject::parse gave an unexpected error: {other}"),
    }
}

/// `args_framing`: byte 0 is the declared argument count (255 means `u32::MAX`); the rest is an
/// application object.
///
/// - `next_arg` then `finish`, and the `Iterator`, give the same arguments and the same error;
/// - the arguments read are consecutive slices that re-frame to exactly the bytes they came from;
/// - an overrun names the right place, and nothing is read after an error;
/// - the rest, cut at every zero byte, framed with `push_arg` (and `push_arg_with`, which gives
///   the same bytes) reads back piece for piece, and a failing `push_arg_with` changes nothing.
pub fn args_framing(data: &[u8]) {
    let Some((&count, app)) = data.split_first() else {
        return;
    };
    let count = if count == u8::MAX {
        u32::MAX
    } else {
        u32::from(count)
    };
    let app = Bytes::copy_from_slice(app);

    // next_arg, then finish.
    let mut args = Args::new(app.clone(), count);
    assert_eq!(args.declared(), count);
    let mut read: Vec<Bytes> = Vec::new();
    let mut consumed = 0usize;
    let mut failure = None;
    while u64::try_from(read.len()).unwrap() < u64::from(count) {
        match args.next_arg() {
            Ok(arg) => {
                consumed += 4 + arg.len();
                read.push(arg);
            }
            Err(error) => {
                let ProtocolError::ArgsOverrun {
                    index,
                    declared,
                    remaining,
                } = &error
                else {
                    panic!("next_arg within the declared count gave {error}");
                };
                assert_eq!(*index as usize, read.len());
                let left = app.len() - consumed;
                if left < 4 {
                    assert_eq!((*declared, *remaining), (4, left));
                } else {
                    assert_eq!(*remaining, left - 4);
                    assert!(*declared > *remaining as u64);
                }
                failure = Some(error.to_string());
                break;
            }
        }
    }
    let mut reframed = BytesMut::new();
    for arg in &read {
        push_arg(&mut reframed, arg);
    }
    assert_eq!(
        &reframed[..],
        &app[..consumed],
        "arguments do not re-frame to their bytes"
    );
    let finished = match &failure {
        Some(_) => {
            assert!(
                args.next_arg().is_err(),
                "an argument was read after a broken framing"
            );
            None
        }
        None => {
            assert!(
                args.clone().next_arg().is_err(),
                "read past the declared count"
            );
            Some(args.finish().map_err(|e| e.to_string()))
        }
    };
    match &finished {
        Some(Ok(())) => assert_eq!(consumed, app.len()),
        Some(Err(text)) => {
            let expected = ProtocolError::ArgsTrailing {
                count,
                extra: app.len() - consumed,
            };
            assert_eq!(*text, expected.to_string());
        }
        None => {}
    }

    // The Iterator gives the same.
    let items: Vec<Result<Bytes, String>> = Args::new(app.clone(), count)
        .map(|item| item.map_err(|e| e.to_string()))
        .collect();
    let mut expected: Vec<Result<Bytes, String>> = read.into_iter().map(Ok).collect();
    if let Some(error) = failure {
        expected.push(Err(error));
    } else if let Some(Err(error)) = finished {
        expected.push(Err(error));
    }
    assert_eq!(items, expected, "the Iterator and next_arg disagree");

    // push_arg round trip.
    let pieces: Vec<&[u8]> = app.split(|&b| b == 0).collect();
    let mut framed = BytesMut::new();
    let mut framed_with = BytesMut::new();
    for piece in &pieces {
        push_arg(&mut framed, piece);
        push_arg_with::<()>(&mut framed_with, |out| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .expect("an infallible writer");
    }
    assert_eq!(framed, framed_with, "push_arg and push_arg_with differ");
    let before = framed_with.clone();
    assert!(
        push_arg_with(&mut framed_with, |out| {
            out.extend_from_slice(&app);
            Err(())
        })
        .is_err()
    );
    assert_eq!(
        framed_with, before,
        "a failing push_arg_with left bytes behind"
    );
    assert_eq!(
        framed.len(),
        pieces.iter().map(|p| 4 + p.len()).sum::<usize>()
    );
    let n = u32::try_from(pieces.len()).expect("few pieces");
    let framed = framed.freeze();
    let mut args = Args::new(framed.clone(), n);
    for piece in &pieces {
        assert_eq!(&args.next_arg().expect("a framed piece")[..], *piece);
    }
    args.finish().expect("nothing left after the framed pieces");
    // One more declared than framed: an overrun at the end; one fewer: trailing bytes.
    let mut more = Args::new(framed.clone(), n + 1);
    for _ in 0..n {
        more.next_arg().expect("a framed piece");
    }
    assert!(matches!(
        more.next_arg(),
        Err(ProtocolError::ArgsOverrun { remaining: 0, .. })
    ));
    let mut fewer = Args::new(framed, n - 1);
    for _ in 1..n {
        fewer.next_arg().expect("a framed piece");
    }
    assert!(matches!(
        fewer.finish(),
        Err(ProtocolError::ArgsTrailing { .. })
    ));
}

// ------------------------------------------------------------------------------------------------
// Application objects: argument, result and item types through each codec.
// ------------------------------------------------------------------------------------------------

use std::collections::HashMap;

use cluster_client::__private::DecodeArgs;
use cluster_client::transcode::{Codec, CodecError, Transcode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A result type shaped like a registry's: strings, a map, a number, an option, a nested list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub weight: Option<u32>,
    pub meta: HashMap<String, String>,
    pub tags: Vec<String>,
}

/// An error type shaped like a user's: unit, newtype, tuple and struct variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppError {
    NotFound,
    Invalid(String),
    Limited(u64, u64),
    Cluster { kind: String, message: String },
}

/// An item type shaped like a subscription's: a version and a list of endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub service: String,
    pub version: u64,
    pub endpoints: Vec<Endpoint>,
    pub removed: Option<Vec<String>>,
    pub payload: Vec<u8>,
    pub score: i64,
    pub flag: bool,
    pub letter: char,
}

/// Decodes `bytes` as `T`; when that works, the value's encoding decodes again to an equal value
/// (compared as JSON values, whose maps are sorted, so a hash map's order does not matter). A
/// failure must be a decode error that names the input's length.
fn value_round_trip<T: Serialize + DeserializeOwned>(codec: Codec, bytes: &[u8]) {
    match codec.decode::<T>(bytes) {
        Ok(value) => {
            let mut encoded = BytesMut::new();
            codec.encode(&value, &mut encoded).expect("a decoded value encodes");
            let again: T = codec
                .decode(&encoded)
                .unwrap_or_else(|e| panic!("{codec}: its own encoding does not decode: {e}"));
            let as_json = |v: &T| serde_json::to_value(v).expect("a JSON value");
            assert_eq!(as_json(&value), as_json(&again), "{codec}: changed on a round trip");
        }
        Err(CodecError::Decode { len, .. }) => assert_eq!(len, bytes.len(), "{codec}"),
        Err(other) => panic!("{codec}: decoding gave {other}"),
    }
}

/// Decodes an application object of framed arguments as a method's argument tuple.
fn args_round_trip<A: DecodeArgs>(codec: Codec, bytes: &[u8]) {
    let _ = A::decode_app(codec, Bytes::copy_from_slice(bytes));
}

/// `app_bincode`, `app_json`, `app_postcard`, `app_serialize_json`: byte 0 picks the type, the rest is what a peer sent
/// as an argument, a result, an error or an item. Decoding never panics and never allocates what a
/// length merely claims (the fuzzer runs with `-malloc_limit_mb`); what decodes round-trips.
pub fn app_object(codec: Codec, data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    match pick % 16 {
        0 => value_round_trip::<String>(codec, bytes),
        1 => value_round_trip::<Vec<u8>>(codec, bytes),
        2 => value_round_trip::<Vec<String>>(codec, bytes),
        3 => value_round_trip::<HashMap<String, u64>>(codec, bytes),
        4 => value_round_trip::<Option<Box<str>>>(codec, bytes),
        5 => value_round_trip::<Endpoint>(codec, bytes),
        6 => value_round_trip::<Vec<Endpoint>>(codec, bytes),
        7 => value_round_trip::<AppError>(codec, bytes),
        8 => value_round_trip::<Result<Vec<Endpoint>, AppError>>(codec, bytes),
        9 => value_round_trip::<Update>(codec, bytes),
        10 => value_round_trip::<(String, u64, bool)>(codec, bytes),
        11 => value_round_trip::<Vec<Vec<u64>>>(codec, bytes),
        12 => args_round_trip::<(String,)>(codec, bytes),
        13 => args_round_trip::<(String, Vec<Endpoint>)>(codec, bytes),
        14 => args_round_trip::<(Update, HashMap<String, String>, Option<u32>)>(codec, bytes),
        _ => args_round_trip::<()>(codec, bytes),
    }
}
