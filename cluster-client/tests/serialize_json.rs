//! `serialize_json` against the values Node's `serialize-json@1.0.3` encoded
//! (`tests/data/node-vectors/transcode_cases.json`): for each case with a Rust counterpart (but
//! those listed below) the Rust value encodes to exactly Node's bytes and Node's bytes decode to the Rust value; every
//! case decodes, as `serde_json::Value`, to what Node's own decoder read; the inputs Node's
//! decoder was probed with each give a typed error. Then property tests: round trips of
//! `Value`-like trees and of Rust structs, and hostile input that must never panic.
//!
//! Cases with no Rust counterpart to encode (their decoding is still checked):
//! - `Invalid Date`: a Rust `Date` holds integer milliseconds, it cannot be NaN. (Node writes
//!   "NAN", which is also the base-36 form of 30191; both decoders read 30191.)
//! - `Map`, `Set`: Node drops their content and writes `{}`; a Rust map or set writes its entries.
//! - `function`, `symbol`, `bigint`: Node writes `null` for them; Rust has no such values.
//!
//! Cases encoded otherwise on purpose (decoding Node's bytes is still checked): integral doubles
//! past 2^53 (`integer 2^53+2`, `integer-valued 1e21`, `integer-valued 1e300`, `float max double`).
//! Node writes them to the integer part, where they read back rounded (`Number.MAX_VALUE` as
//! Infinity); this codec writes them to the float part, which Node and Rust read back exact.

use std::collections::BTreeMap;
use std::fmt::Debug;

use cluster_client::serialize_json::{self, Date, Error, Undefined, from_slice, to_vec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/node-vectors/transcode_cases.json"
);

/// The cases whose `encodedText` abridges the stack trace; their `hex` holds the real bytes.
const ABRIDGED: [&str; 2] = ["Error", "TypeError"];

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// What Node's decoder read, with values JSON cannot hold tagged by `$type`.
    decoded: Value,
}

#[derive(Deserialize)]
struct File<'a> {
    transcode: String,
    #[serde(borrow)]
    cases: Vec<RawCase<'a>>,
    #[serde(rename = "decodeProbes")]
    decode_probes: Vec<Value>,
}

#[derive(Deserialize)]
struct RawCase<'a> {
    name: String,
    hex: String,
    #[serde(borrow)]
    decoded: &'a RawValue,
}

/// A decoded value from its JSON text. A number is parsed by Rust, correctly rounded:
/// `serde_json` without `float_roundtrip` may miss the last bit (it reads
/// `1.0000000000000001e+21` as `1e21`).
fn node_value(raw: &str) -> Value {
    if let Ok(n) = raw.parse::<u64>() {
        Value::from(n)
    } else if let Ok(n) = raw.parse::<i64>() {
        Value::from(n)
    } else if let Ok(f) = raw.parse::<f64>() {
        Value::from(f)
    } else {
        serde_json::from_str(raw).expect("decoded is JSON")
    }
}

fn load() -> (Vec<Case>, Vec<Value>) {
    let text = std::fs::read_to_string(CASES).expect("the transcode vectors are missing");
    let file: File<'_> = serde_json::from_str(&text).expect("transcode_cases.json");
    assert_eq!(file.transcode, "serialize-json@1.0.3");
    let cases = file
        .cases
        .iter()
        .map(|case| Case {
            name: case.name.clone(),
            bytes: hex::decode(&case.hex).expect("hex digits"),
            decoded: node_value(case.decoded.get()),
        })
        .collect();
    (cases, file.decode_probes)
}

/// The stack trace of an `Error` case: the fourth string entry, unescaped.
/// A double this codec writes and reads back bit for bit.
fn exact_round_trip(value: f64) {
    let bytes = to_vec(&value).expect("encodes");
    let back: f64 = from_slice(&bytes).expect("decodes");
    assert_eq!(back.to_bits(), value.to_bits(), "{value}");
}

fn stack_of(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).unwrap();
    let strings = text.split('^').next().unwrap();
    let raw = strings.split('|').nth(3).unwrap();
    raw.replace('+', " ")
        .replace("%2B", "+")
        .replace("%7C", "|")
        .replace("%5E", "^")
        .replace("%25", "%")
}

/// Node's decoded value as `serde_json::Value` shows it: undefined and the non-finite numbers as
/// null, a Date as its milliseconds, a Buffer as its bytes, an Error as its properties.
fn as_value(node: &Value, stack: &str) -> Value {
    match node {
        Value::Array(items) => Value::Array(items.iter().map(|v| as_value(v, stack)).collect()),
        Value::Object(map) => match map.get("$type").and_then(Value::as_str) {
            Some("undefined") | Some("number") => Value::Null,
            Some("Date") => map["ms"].clone(),
            Some("Buffer") => json!(hex::decode(map["hex"].as_str().unwrap()).unwrap()),
            Some("Error") => {
                let mut props = as_value(&map["props"], stack);
                props["stack"] = json!(stack);
                props
            }
            Some(other) => panic!("unknown $type {other}"),
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), as_value(v, stack)))
                    .collect::<Map<_, _>>(),
            ),
        },
        other => other.clone(),
    }
}

/// Bytes written with `serialize_bytes` and read with `deserialize_byte_buf`, as `serde_bytes`
/// does.
#[derive(Debug, Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A double compared bit for bit, so that NaN equals NaN and 0 differs from -0.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
struct Bits(f64);

impl PartialEq for Bits {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NoFields {}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct UndefinedAndNull {
    a: Undefined,
    b: Option<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Missing {
    a: Option<u8>,
    b: Option<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct KeyOrder {
    #[serde(rename = "1")]
    one: String,
    #[serde(rename = "2")]
    two: String,
    b: u8,
    a: u8,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Nested {
    a: u8,
    b: String,
    c: Inner,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    d: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "$serialize_json::Error")]
struct CodedError {
    message: String,
    stack: String,
    code: String,
    extra: Extra,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Extra {
    n: u8,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "$serialize_json::Error")]
struct PlainError {
    message: String,
    stack: String,
}

/// How a Rust program would read any of the errors: no marker name, optional properties.
#[derive(Debug, PartialEq, Deserialize)]
struct AnyError {
    name: Option<String>,
    message: String,
    stack: Option<String>,
    code: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Payload {
    id: u32,
    name: String,
    tags: Vec<String>,
    ok: bool,
    score: f64,
    ts: i64,
}

/// Counts the checks made, per direction.
#[derive(Default)]
struct Checked {
    encoded: Vec<String>,
    decoded: Vec<String>,
}

impl Checked {
    fn encode<T: Serialize + Debug>(&mut self, case: &Case, value: &T) {
        let bytes = to_vec(value)
            .unwrap_or_else(|e| panic!("{}: encoding {value:?} failed: {e}", case.name));
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&case.bytes),
            "{}: encoding {value:?}",
            case.name
        );
        if self.encoded.last() != Some(&case.name) {
            self.encoded.push(case.name.clone());
        }
    }

    fn decode<T: DeserializeOwned + PartialEq + Debug>(&mut self, case: &Case, want: T) {
        let got: T = from_slice(&case.bytes).unwrap_or_else(|e| {
            panic!(
                "{}: decoding as {} failed: {e}",
                case.name,
                std::any::type_name::<T>()
            )
        });
        assert_eq!(got, want, "{}: decoding", case.name);
        if self.decoded.last() != Some(&case.name) {
            self.decoded.push(case.name.clone());
        }
    }

    fn both<T: Serialize + DeserializeOwned + PartialEq + Debug>(&mut self, case: &Case, value: T) {
        self.encode(case, &value);
        self.decode(case, value);
    }
}

#[test]
fn hex_is_the_encoded_text() {
    let text = std::fs::read_to_string(CASES).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            bytes.len() as u64,
            case["bytes"].as_u64().unwrap(),
            "{name}"
        );
        if !ABRIDGED.contains(&name) {
            assert_eq!(
                bytes,
                case["encodedText"].as_str().unwrap().as_bytes(),
                "{name}"
            );
        }
    }
}

#[test]
fn every_case_decodes_as_node_read_it() {
    let (cases, _) = load();
    assert!(cases.len() >= 55, "{} cases", cases.len());
    for case in &cases {
        let stack = if ABRIDGED.contains(&case.name.as_str()) {
            stack_of(&case.bytes)
        } else {
            String::new()
        };
        let want = as_value(&case.decoded, &stack);
        let got: Value = from_slice(&case.bytes)
            .unwrap_or_else(|e| panic!("{}: decoding as Value failed: {e}", case.name));
        // Past 2^53 a number is the double Node reads, whichever way JSON spells it.
        let past_2_53 = |v: &Value| {
            v.as_f64()
                .is_some_and(|n| n.abs() > 9_007_199_254_740_992.0)
        };
        if past_2_53(&want) {
            assert_eq!(got.as_f64(), want.as_f64(), "{}", case.name);
            continue;
        }
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn rust_values_match_node_bytes() {
    let (cases, _) = load();
    let mut checked = Checked::default();
    let mut skipped = Vec::new();
    for case in &cases {
        let c = &mut checked;
        match case.name.as_str() {
            "string" => c.both(case, "hello".to_owned()),
            "empty string" => c.both(case, String::new()),
            "string with escaped chars" => c.both(case, "a b+c|d^e%f".to_owned()),
            "string containing a literal \"%2B\"" => c.both(case, "%2B and +".to_owned()),
            "string with JSON/control characters" => {
                c.both(case, "line1\nline2\t\"q\"\\".to_owned())
            }
            "string with token characters" => c.both(case, "$@*#]".to_owned()),
            "unicode string" => c.both(case, "日本語 ✓ 😀".to_owned()),
            "integer 0" => {
                c.both(case, 0u8);
                c.both(case, json!(0));
            }
            "integer 1" => c.both(case, 1i64),
            "integer 35" => c.both(case, 35u32),
            "integer 36" => c.both(case, 36i16),
            "integer -1" => {
                c.both(case, -1i32);
                c.both(case, json!(-1));
            }
            "integer 1234567" => c.both(case, 1_234_567u64),
            "integer 2^31" => c.both(case, 2_147_483_648i64),
            "integer 2^53-1" => {
                c.both(case, 9_007_199_254_740_991u64);
                c.both(case, json!(9_007_199_254_740_991u64));
            }
            "integer 2^53+2" => {
                // JavaScript holds it exactly as a double; as a Rust integer it is refused. Past
                // 2^53 this codec writes a double to the float part, where it reads back exact.
                c.decode(case, 9_007_199_254_740_994.0f64);
                exact_round_trip(9_007_199_254_740_994.0f64);
                skipped.push(case.name.clone());
                assert!(matches!(
                    from_slice::<u64>(&case.bytes),
                    Err(Error::UnsafeInteger { .. })
                ));
                assert!(matches!(
                    to_vec(&9_007_199_254_740_994i64),
                    Err(Error::UnsafeInteger { .. })
                ));
            }
            "integer-valued 1e21" => {
                // Node's base-36 digits of 1e21 read back as Node reads them; this codec writes
                // the float part instead, which reads back exact.
                c.decode(case, 1.0000000000000001e21f64);
                exact_round_trip(1e21f64);
                skipped.push(case.name.clone());
            }
            "integer-valued 1e300" => {
                c.decode(case, 1.0000000000000006e300f64);
                exact_round_trip(1e300f64);
                skipped.push(case.name.clone());
            }
            "negative zero" => {
                c.encode(case, &Bits(-0.0));
                c.decode(case, Bits(0.0));
            }
            "float 1.5" => {
                c.both(case, 1.5f64);
                c.both(case, 1.5f32);
                c.both(case, json!(1.5));
            }
            "float -0.25" => c.both(case, -0.25f64),
            "float 0.1+0.2" => c.both(case, 0.1f64 + 0.2),
            "float 1e-7" => c.both(case, 1e-7f64),
            "float max double" => {
                // Node's integer digits of it read back as Infinity; this codec's float text
                // reads back exact.
                c.decode(case, f64::INFINITY);
                exact_round_trip(f64::MAX);
                skipped.push(case.name.clone());
            }
            "NaN" => c.both(case, Bits(f64::NAN)),
            "Infinity" => c.both(case, f64::INFINITY),
            "-Infinity" => c.both(case, f64::NEG_INFINITY),
            "true" => c.both(case, json!(true)),
            "false" => c.both(case, false),
            "null" => {
                c.both(case, None::<String>);
                c.both(case, ());
                c.both(case, Value::Null);
            }
            "undefined" => {
                c.both(case, Undefined);
                c.decode(case, None::<String>);
            }
            "empty array" => {
                c.both(case, Vec::<u8>::new());
                c.both(case, json!([]));
            }
            "empty object" => {
                c.both(case, BTreeMap::<String, u8>::new());
                c.both(case, NoFields {});
                c.both(case, json!({}));
            }
            "mixed array" => {
                c.both(
                    case,
                    (
                        1u8,
                        "a".to_owned(),
                        true,
                        None::<u8>,
                        Undefined,
                        [2u8],
                        NoFields {},
                    ),
                );
                c.decode(case, json!([1, "a", true, null, null, [2], {}]));
            }
            "nested object" => {
                c.both(case, json!({ "a": 1, "b": "x", "c": { "d": [] } }));
                let nested = Nested {
                    a: 1,
                    b: "x".into(),
                    c: Inner { d: Vec::new() },
                };
                c.both(case, nested);
            }
            "object with undefined value" => {
                c.both(
                    case,
                    UndefinedAndNull {
                        a: Undefined,
                        b: None,
                    },
                );
                c.decode(case, Missing { a: None, b: None });
            }
            "object key order" => c.both(
                case,
                KeyOrder {
                    one: "one".into(),
                    two: "two".into(),
                    b: 1,
                    a: 3,
                },
            ),
            "repeated strings (no dedup)" => c.both(case, json!({ "x": "same", "y": "same" })),
            "Date" => {
                c.both(case, Date(1_700_000_000_000));
                c.decode(case, 1_700_000_000_000i64);
            }
            "Date epoch" => c.both(case, Date(0)),
            "Date before epoch" => {
                c.both(case, Date(-1));
                c.decode(case, -1.0f64);
            }
            "Invalid Date" => {
                c.decode(case, Date(30191));
                skipped.push(case.name.clone());
            }
            "Buffer" => {
                c.both(case, Bytes(b"hi".to_vec()));
                c.decode(case, b"hi".to_vec());
            }
            "empty Buffer" => c.both(case, Bytes(Vec::new())),
            "Uint8Array (not Buffer)" => {
                c.both(case, BTreeMap::from([(0u32, 1u8), (1, 2)]));
            }
            "Error" => {
                let stack = stack_of(&case.bytes);
                c.both(
                    case,
                    CodedError {
                        message: "oops".into(),
                        stack: stack.clone(),
                        code: "E_CODE".into(),
                        extra: Extra { n: 1 },
                    },
                );
                c.decode(
                    case,
                    AnyError {
                        name: None,
                        message: "oops".into(),
                        stack: Some(stack),
                        code: Some("E_CODE".into()),
                    },
                );
            }
            "TypeError" => {
                let stack = stack_of(&case.bytes);
                assert!(stack.starts_with("TypeError: bad type\n"));
                c.both(
                    case,
                    PlainError {
                        message: "bad type".into(),
                        stack: stack.clone(),
                    },
                );
                c.decode(
                    case,
                    AnyError {
                        name: None,
                        message: "bad type".into(),
                        stack: Some(stack),
                        code: None,
                    },
                );
            }
            "Map" | "Set" => {
                c.decode(case, BTreeMap::<String, u8>::new());
                skipped.push(case.name.clone());
            }
            "function" | "symbol" | "bigint" => {
                c.decode(case, None::<u8>);
                skipped.push(case.name.clone());
            }
            "null-prototype object" => {
                c.both(case, BTreeMap::from([("k".to_owned(), "v".to_owned())]));
            }
            "class instance" => c.both(case, Point { x: 1, y: 2 }),
            "invoke args of the small bench payload" => c.both(
                case,
                Payload {
                    id: 1_234_567,
                    name: "cluster-client".into(),
                    tags: vec!["alpha".into(), "beta".into()],
                    ok: true,
                    score: 98.25,
                    ts: 1_700_000_000_000,
                },
            ),
            other => panic!("case {other:?} has no Rust counterpart listed in this test"),
        }
    }
    println!(
        "{} cases: {} checked encoding, {} checked decoding; encoding skipped: {:?}",
        cases.len(),
        checked.encoded.len(),
        checked.decoded.len(),
        skipped
    );
    assert_eq!(checked.decoded.len(), cases.len());
    assert_eq!(checked.encoded.len() + skipped.len(), cases.len());
}

#[test]
fn node_decoder_probes_are_typed_errors() {
    let (_, probes) = load();
    assert_eq!(probes.len(), 6);
    for probe in &probes {
        let name = probe["name"].as_str().unwrap();
        let text = probe["text"].as_str().unwrap();
        let want = match name {
            "plain JSON object" | "plain JSON string" | "empty input" => {
                Error::MissingSection { found: 1 }
            }
            "only separators" => Error::UnexpectedEnd { offset: 4 },
            "dangling index" => Error::DanglingIndex {
                offset: 4,
                index: 5,
                len: 0,
            },
            "unterminated object" => Error::MissingClose { opened_at: 6 },
            other => panic!("probe {other:?} has no expected error listed in this test"),
        };
        assert_eq!(from_slice::<Value>(text.as_bytes()), Err(want), "{name}");
    }
}

/// Leaves JavaScript keeps exactly: integers up to 2^53 and non-integral doubles (an integral
/// double comes back as an integer, as in JavaScript).
fn leaf() -> impl Strategy<Value = Value> {
    let exact = -(1i64 << 53)..=(1i64 << 53);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        exact.prop_map(Value::from),
        any::<f64>()
            .prop_filter("non-integral", |f| f.is_finite() && f.fract() != 0.0)
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[ +|^%$@*#\\]a0-]{0,8}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Count(i16),
    Pair(u8, bool),
    Shape { label: String, scale: Option<f32> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    delta: i32,
    ratio: f64,
    name: String,
    initial: char,
    flags: Vec<bool>,
    note: Option<String>,
    kind: Kind,
    blob: Bytes,
    counts: BTreeMap<u16, i64>,
    pair: (i8, String),
    when: Date,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Plain),
        any::<i16>().prop_map(Kind::Count),
        (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Kind::Pair(a, b)),
        (
            any::<String>(),
            proptest::option::of(any::<f32>().prop_filter("finite", |f| f.is_finite()))
        )
            .prop_map(|(label, scale)| Kind::Shape { label, scale }),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        (
            0..=(1u64 << 53),
            any::<i32>(),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ),
        (
            any::<String>(),
            any::<char>(),
            prop::collection::vec(any::<bool>(), 0..4),
        ),
        (
            proptest::option::of(any::<String>()),
            kind(),
            prop::collection::vec(any::<u8>(), 0..8),
        ),
        (
            prop::collection::btree_map(any::<u16>(), -(1i64 << 53)..=(1i64 << 53), 0..4),
            (any::<i8>(), any::<String>()),
            -8_640_000_000_000_000i64..=8_640_000_000_000_000,
        ),
    )
        .prop_map(
            |(
                (id, delta, ratio),
                (name, initial, flags),
                (note, kind, blob),
                (counts, pair, when),
            )| {
                Record {
                    id,
                    delta,
                    // An integral double beyond 2^53 reads back as V8 approximates it; keep to
                    // the values JavaScript itself round-trips.
                    ratio: if ratio.fract() == 0.0 {
                        ratio % 9e15
                    } else {
                        ratio
                    },
                    name,
                    initial,
                    flags,
                    note,
                    kind,
                    blob: Bytes(blob),
                    counts,
                    pair,
                    when: Date(when),
                }
            },
        )
}

proptest! {
    #[test]
    fn value_trees_round_trip(value in tree()) {
        let bytes = to_vec(&value).unwrap();
        prop_assert_eq!(from_slice::<Value>(&bytes).unwrap(), value);
    }

    #[test]
    fn structs_round_trip(record in record()) {
        let bytes = to_vec(&record).unwrap();
        prop_assert_eq!(from_slice::<Record>(&bytes).unwrap(), record);
    }

    #[test]
    fn floats_round_trip(f in any::<f64>(), g in any::<f32>()) {
        prop_assume!(f.fract() != 0.0 || f.abs() <= 9e15);
        let back: Bits = from_slice(&to_vec(&f).unwrap()).unwrap();
        let want = if f == 0.0 { 0.0 } else { f };
        prop_assert_eq!(back, Bits(want));
        let back: f32 = from_slice(&to_vec(&g).unwrap()).unwrap();
        prop_assert!(back == g || (back.is_nan() && g.is_nan()), "{} -> {}", g, back);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = from_slice::<Value>(&bytes);
    }

    #[test]
    fn near_valid_text_never_panics(text in "[a+%25BC7E|^$@*#\\]0-9A-Z.-]{0,64}") {
        let _ = from_slice::<Value>(text.as_bytes());
        let _ = from_slice::<Record>(text.as_bytes());
    }

    #[test]
    fn mutated_encodings_never_panic(
        record in record(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = to_vec(&record).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let _ = from_slice::<Record>(&bytes);
        let _ = from_slice::<Value>(&bytes);
    }
}

#[test]
fn module_docs_example_is_what_node_writes() {
    // `{ a: 1, b: [true, 'x y'] }` in Node.
    let value = json!({ "a": 1, "b": [true, "x y"] });
    assert_eq!(to_vec(&value).unwrap(), b"a|b|x+y^1^^^$0|3|1|@-1|2]]");
    let _ = serialize_json::MAX_DEPTH;
}
