//! Application-object codecs: every compiled-in `Codec` round-trips structs, enums, vectors, options,
//! strings and maps; garbage is `CodecError::Decode`; the compact formats refuse trailing bytes; names
//! round-trip.

use std::collections::HashMap;
use std::fmt::Debug;

use bytes::BytesMut;
use cluster_client::transcode::{Codec, CodecError, Json, Transcode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    score: i32,
    ratio: f64,
    tags: Vec<String>,
    parent: Option<Box<Record>>,
    shape: Shape,
    attrs: HashMap<String, i64>,
    blob: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f32),
    Rect { w: u16, h: u16 },
    Tagged(String, Option<bool>),
}

/// The codecs compiled in.
fn all_codecs() -> impl Iterator<Item = Codec> {
    Codec::ALL
        .into_iter()
        .filter(|codec| codec.available().is_ok())
}

/// The widest integers `codec` carries: all 64 bits, or JavaScript's 2^53 for serialize-json,
/// which has JavaScript's one number type (wider ones are refused: see
/// `serialize_json_refuses_integers_past_2_53`).
fn widest(codec: Codec) -> (u64, i64) {
    if codec == Codec::SerializeJson {
        (1 << 53, 1 << 53)
    } else {
        (u64::MAX, i64::MAX)
    }
}

fn sample(codec: Codec) -> Record {
    let (widest_u64, widest_i64) = widest(codec);
    let mut attrs = HashMap::new();
    attrs.insert("a".to_owned(), -1);
    attrs.insert("ünïcode key".to_owned(), widest_i64);
    Record {
        id: widest_u64,
        name: "hello \"world\" ✓\n".to_owned(),
        score: i32::MIN,
        ratio: -0.1,
        tags: vec![String::new(), "x".to_owned()],
        parent: Some(Box::new(Record {
            id: 0,
            name: String::new(),
            score: 0,
            ratio: 1e300,
            tags: vec![],
            parent: None,
            shape: Shape::Empty,
            attrs: HashMap::new(),
            blob: vec![],
        })),
        shape: Shape::Rect { w: 3, h: u16::MAX },
        attrs,
        blob: (0..=255).collect(),
    }
}

#[track_caller]
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(codec: Codec, value: &T) {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    codec
        .encode(value, &mut buf)
        .unwrap_or_else(|e| panic!("{codec}: encode {value:?}: {e}"));
    assert_eq!(&buf[..6], b"prefix", "{codec}: encode appends");
    let back: T = codec
        .decode(&buf[6..])
        .unwrap_or_else(|e| panic!("{codec}: decode {value:?}: {e}"));
    assert_eq!(&back, value, "{codec}");
}

#[test]
fn values_round_trip_through_every_codec() {
    for codec in all_codecs() {
        round_trip(codec, &sample(codec));
        round_trip(codec, &vec![sample(codec), sample(codec)]);
        round_trip(codec, &Shape::Empty);
        round_trip(codec, &Shape::Circle(2.5));
        round_trip(codec, &Shape::Tagged("t".into(), None));
        round_trip(codec, &Shape::Tagged(String::new(), Some(false)));
        round_trip(codec, &Some(vec![1u32, 2, 3]));
        round_trip::<Option<String>>(codec, &None);
        round_trip(codec, &Some(String::new()));
        round_trip(codec, &String::from("plain"));
        round_trip(codec, &Vec::<Record>::new());
        round_trip(codec, &(1u8, -2i16, 'c', true, ()));
        let map: HashMap<String, Vec<Option<Shape>>> = [
            ("k".to_owned(), vec![None, Some(Shape::Circle(-1.0))]),
            (String::new(), vec![]),
        ]
        .into_iter()
        .collect();
        round_trip(codec, &map);
        round_trip(
            codec,
            &HashMap::<u32, String>::from([(7, "seven".to_owned())]),
        );
    }
}

#[test]
fn garbage_is_a_decode_error() {
    for codec in all_codecs() {
        for garbage in [
            &b""[..],
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"{not json",
            b"\x01",
        ] {
            match codec.decode::<Record>(garbage) {
                Err(CodecError::Decode {
                    codec: name,
                    len,
                    message,
                }) => {
                    assert_eq!(name, codec.name());
                    assert_eq!(len, garbage.len());
                    assert!(!message.is_empty());
                }
                other => panic!("{codec}: {garbage:?}: expected Decode, got {other:?}"),
            }
        }
        // A string that is not UTF-8.
        let mut buf = BytesMut::new();
        codec.encode(&vec![0xffu8, 0xfe], &mut buf).unwrap();
        if codec != Codec::Json {
            // The compact formats frame a string and a byte vector alike.
            assert!(matches!(
                codec.decode::<String>(&buf),
                Err(CodecError::Decode { .. })
            ));
        }
        // A value of another shape.
        let mut buf = BytesMut::new();
        codec.encode(&Shape::Circle(1.0), &mut buf).unwrap();
        assert!(
            matches!(codec.decode::<Record>(&buf), Err(CodecError::Decode { .. })),
            "{codec}: Shape decoded as Record"
        );
    }
}

#[test]
fn trailing_bytes_are_an_error_for_compact_codecs() {
    for codec in all_codecs() {
        let mut buf = BytesMut::new();
        codec.encode(&sample(codec), &mut buf).unwrap();
        buf.extend_from_slice(b"\x00");
        let result = codec.decode::<Record>(&buf);
        if matches!(codec, Codec::Json | Codec::SerializeJson) {
            // serde_json allows trailing whitespace only; a NUL byte is an error too. In
            // serialize-json the byte runs on the last token of the structure, which it spoils.
            assert!(
                matches!(result, Err(CodecError::Decode { .. })),
                "{result:?}"
            );
        } else {
            match result {
                Err(CodecError::Decode { len, message, .. }) => {
                    assert_eq!(len, buf.len());
                    assert!(message.contains("trailing"), "{codec}: {message}");
                }
                other => panic!("{codec}: expected a trailing-bytes error, got {other:?}"),
            }
        }
    }
}

#[test]
fn serialize_json_refuses_integers_past_2_53() {
    let mut buf = BytesMut::from(&b"kept"[..]);
    match Codec::SerializeJson.encode(&u64::MAX, &mut buf) {
        Err(CodecError::Encode { codec, message }) => {
            assert_eq!(codec, "serialize-json");
            assert!(message.contains("2^53"), "{message}");
        }
        other => panic!("expected Encode, got {other:?}"),
    }
    assert_eq!(&buf[..], b"kept");
    let mut buf = BytesMut::new();
    Codec::SerializeJson
        .encode(&(1u64 << 53), &mut buf)
        .unwrap();
    assert_eq!(Codec::SerializeJson.decode::<u64>(&buf).unwrap(), 1 << 53);
}

#[test]
fn json_is_plain_json() {
    let mut buf = BytesMut::new();
    Json.encode(&Shape::Rect { w: 1, h: 2 }, &mut buf).unwrap();
    assert_eq!(&buf[..], br#"{"Rect":{"w":1,"h":2}}"#);
    // Self-describing: added fields are ignored.
    let back: Shape = Json.decode(br#"{"Rect":{"w":1,"h":2,"d":3}}"#).unwrap();
    assert_eq!(back, Shape::Rect { w: 1, h: 2 });
}

#[test]
fn failed_encode_leaves_the_buffer_as_it_was() {
    // A map with non-string keys cannot be JSON.
    let mut buf = BytesMut::from(&b"kept"[..]);
    let map = HashMap::from([((1u8, 2u8), 3u8)]);
    match Codec::Json.encode(&map, &mut buf) {
        Err(CodecError::Encode { codec, message }) => {
            assert_eq!(codec, "json");
            assert!(!message.is_empty());
        }
        other => panic!("expected Encode, got {other:?}"),
    }
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn names_round_trip() {
    for codec in all_codecs() {
        assert_eq!(Codec::from_name(codec.name()), Some(codec));
        assert_eq!(codec.to_string(), codec.name());
    }
    assert_eq!(Codec::Json.name(), "json");
    assert_eq!(
        Codec::from_name("serialize-json"),
        Some(Codec::SerializeJson)
    );
    assert_eq!(Codec::from_name("JSON"), None);
    assert_eq!(Codec::from_name(""), None);
    // Every codec has its name and is the default in every build, whatever features are on.
    assert_eq!(Codec::default(), Codec::Bincode);
    for (codec, name) in [(Codec::Bincode, "bincode"), (Codec::Postcard, "postcard")] {
        assert_eq!(codec.name(), name);
        assert_eq!(Codec::from_name(name), Some(codec));
    }
}

/// A codec whose feature is off says which feature to enable, on every use.
#[test]
fn a_codec_left_out_names_its_feature() {
    for (codec, on) in [
        (Codec::Bincode, cfg!(feature = "bincode")),
        (Codec::Postcard, cfg!(feature = "postcard")),
    ] {
        if on {
            assert_eq!(codec.available(), Ok(()));
            continue;
        }
        let unavailable = CodecError::Unavailable {
            codec: codec.name(),
            feature: codec.name(),
        };
        assert_eq!(codec.available(), Err(unavailable.clone()));
        let mut buf = BytesMut::new();
        assert_eq!(codec.encode(&1u8, &mut buf), Err(unavailable.clone()));
        assert_eq!(codec.decode::<u8>(&[1]), Err(unavailable.clone()));
        let text = unavailable.to_string();
        assert!(
            text.contains(&format!("`{}` feature", codec.name())),
            "{text}"
        );
    }
    assert_eq!(Codec::Json.available(), Ok(()));
}
