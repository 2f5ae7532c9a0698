//! Unit tests of the pieces and of the serde mapping.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::number::{
    js_number_to_string, parse_base36_exact, parse_base36_js, parse_js_float, push_base36,
    push_integral_f64,
};
use super::{Date, Error, MAX_DEPTH, Section, Undefined, escape, from_slice, to_vec};

fn text<T: Serialize + ?Sized>(value: &T) -> String {
    String::from_utf8(to_vec(value).unwrap()).unwrap()
}

fn decode<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    from_slice(text.as_bytes())
}

/// Bytes through `serialize_bytes` / `deserialize_byte_buf`, as `serde_bytes` would do.
#[derive(Debug, PartialEq)]
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

#[test]
fn escapes_only_the_five_characters() {
    let mut out = String::new();
    escape::escape_into(&mut out, "a b+c|d^e%f\n$@*#]");
    assert_eq!(out, "a+b%2Bc%7Cd%5Ee%25f\n$@*#]");
    assert_eq!(escape::unescape(&out).unwrap(), "a b+c|d^e%f\n$@*#]");
    assert!(matches!(
        escape::unescape("plain"),
        Ok(std::borrow::Cow::Borrowed("plain"))
    ));
    for bad in ["%", "%2", "%2b", "%41", "a%zz", "%7"] {
        assert!(escape::validate(bad).is_err(), "{bad}");
    }
    assert_eq!(escape::validate("ab%41"), Err(2));
}

#[test]
fn numbers_print_as_javascript_prints_them() {
    let cases: &[(f64, &str)] = &[
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "1e-7"),
        (-1e-7, "-1e-7"),
        (1.23e-7, "1.23e-7"),
        (0.000001, "0.000001"),
        (0.0000015, "0.0000015"),
        (123.456, "123.456"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e21, "1e+21"),
        (2.5e21, "2.5e+21"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
        (-0.0, "0"),
    ];
    for &(value, want) in cases {
        assert_eq!(js_number_to_string(value), want);
        if value.is_finite() {
            assert_eq!(parse_js_float(want), Some(value));
        }
    }
}

#[test]
fn float_entries_are_parsed_strictly() {
    for good in ["1.", ".5", "1E5", "-1e-7", "1e+21", "NaN", "-Infinity", "0"] {
        assert!(parse_js_float(good).is_some(), "{good}");
    }
    for bad in [
        "", "-", ".", "1e", "1.5x", "inf", "nan", "+1", " 1", "0x10", "infinity", "--1", "1e+",
    ] {
        assert_eq!(parse_js_float(bad), None, "{bad}");
    }
}

#[test]
fn base36_matches_v8() {
    let integral = |v: f64| {
        let mut s = String::new();
        push_integral_f64(&mut s, v);
        s
    };
    assert_eq!(integral(0.0), "0");
    assert_eq!(integral(-0.0), "0");
    assert_eq!(integral(35.0), "Z");
    assert_eq!(integral(-36.0), "-10");
    assert_eq!(integral(9007199254740994.0), "2GOSA7PA2GY");
    assert_eq!(integral(1e21), "5V1J4F4DS7C000");
    assert_eq!(integral(f64::MAX).len(), 199);
    let mut s = String::new();
    push_base36(&mut s, true, 1234567);
    assert_eq!(s, "-QGLJ");
    assert_eq!(parse_base36_exact("-QGLJ"), Some(-1234567));
    assert_eq!(parse_base36_exact("qglj"), Some(1234567));
    assert_eq!(parse_base36_exact(&"Z".repeat(30)), None);
    assert_eq!(parse_base36_js("5V1J4F4DS7C000"), 1.0000000000000001e21);
    assert_eq!(parse_base36_js(&integral(1e300)), 1.0000000000000006e300);
    assert_eq!(parse_base36_js(&integral(f64::MAX)), f64::INFINITY);
    assert_eq!(parse_base36_js("-2GOSA7PA2GV"), -9007199254740991.0);
}

#[test]
fn scalars() {
    assert_eq!(text(&true), "^^^^-1");
    assert_eq!(text(&()), "^^^^-3");
    assert_eq!(text(&None::<u8>), "^^^^-3");
    assert_eq!(text(&Some(1u8)), "^1^^^0");
    assert_eq!(text(&Undefined), "^^^^-5");
    assert_eq!(text(&""), "^^^^-4");
    assert_eq!(text(&'x'), "x^^^^0");
    assert_eq!(text(&' '), "+^^^^0");
    assert_eq!(text(&0.1f32), "^^0.1^^0");
    assert_eq!(text(&3.0f64), "^3^^^0");
    assert_eq!(text(&-7i8), "^-7^^^0");
    assert_eq!(text(&(1u64 << 53)), "^2GOSA7PA2GW^^^0");
    assert_eq!(text(&Date(-1)), "^^^-1^0");
    assert_eq!(decode::<Option<u8>>("^^^^-5").unwrap(), None);
    assert_eq!(decode::<Option<u8>>("^^^^-3").unwrap(), None);
    assert_eq!(decode::<()>("^^^^-5").unwrap(), ());
    assert_eq!(decode::<Undefined>("^^^^-5").unwrap(), Undefined);
    assert!(matches!(
        decode::<Undefined>("^^^^-3"),
        Err(Error::InvalidType { .. })
    ));
    assert_eq!(decode::<char>("x^^^^0").unwrap(), 'x');
    assert_eq!(decode::<f32>("^^0.1^^0").unwrap(), 0.1f32);
    assert_eq!(decode::<f64>("^3^^^0").unwrap(), 3.0);
    assert_eq!(decode::<i64>("^^^LOYW3V28^0").unwrap(), 1_700_000_000_000);
    assert_eq!(
        decode::<Date>("^^^LOYW3V28^0").unwrap(),
        Date(1_700_000_000_000)
    );
    assert_eq!(
        decode::<Date>("^LOYW3V28^^^0").unwrap(),
        Date(1_700_000_000_000)
    );
    assert_eq!(decode::<&str>("abc^^^^0").unwrap(), "abc");
    assert_eq!(decode::<String>("a+b^^^^0").unwrap(), "a b");
}

#[test]
fn integers_beyond_two_to_the_53_are_refused() {
    let limit = 1i64 << 53;
    assert!(to_vec(&limit).is_ok());
    assert!(to_vec(&-limit).is_ok());
    for refused in [limit + 1, -limit - 1, i64::MAX, i64::MIN] {
        assert!(matches!(to_vec(&refused), Err(Error::UnsafeInteger { .. })));
    }
    assert!(matches!(
        to_vec(&u64::MAX),
        Err(Error::UnsafeInteger { .. })
    ));
    assert!(matches!(
        to_vec(&u128::MAX),
        Err(Error::UnsafeInteger { .. })
    ));
    // As a double it goes to the float part, where it reads back exact (Node writes it to the
    // integer part, and reads `^2GOSA7PA2GY^^^0` back as the same double).
    assert_eq!(text(&((limit + 2) as f64)), "^^9007199254740994^^0");
    assert_eq!(
        decode::<f64>("^2GOSA7PA2GY^^^0").unwrap(),
        (limit + 2) as f64
    );
    // Node's integer entry past 2^53 is not a value for an integer type: Node holds a rounded
    // double there. Self-described, it is that double.
    assert!(matches!(
        decode::<u64>("^2GOSA7PA2GY^^^0"),
        Err(Error::UnsafeInteger { .. })
    ));
    assert_eq!(
        decode::<serde_json::Value>("^2GOSA7PA2GY^^^0").unwrap(),
        serde_json::json!((limit + 2) as f64)
    );
}

#[test]
fn integers_that_do_not_fit_the_target_are_refused() {
    assert_eq!(decode::<u8>("^73^^^0").unwrap(), 255);
    assert_eq!(
        decode::<u8>("^74^^^0"),
        Err(Error::NumberOutOfRange {
            offset: 6,
            target: "u8"
        })
    );
    assert!(matches!(
        decode::<u32>("^-1^^^0"),
        Err(Error::NumberOutOfRange { .. })
    ));
    let huge = format!("^{}^^^0", "Z".repeat(40));
    assert!(matches!(
        decode::<i128>(&huge),
        Err(Error::NumberOutOfRange { .. })
    ));
    assert!(matches!(
        decode::<i64>("^^1.5^^0"),
        Err(Error::InvalidType { .. })
    ));
    // Self-describing: beyond u64 it is Node's double.
    assert_eq!(
        decode::<Value>(&huge).unwrap(),
        json!(parse_base36_js(&"Z".repeat(40)))
    );
    assert_eq!(decode::<Value>("^-1^^^0").unwrap(), json!(-1));
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Pair(u8, String),
    Rect { w: u32, h: u32 },
}

#[test]
fn enums_are_externally_tagged() {
    let cases = [
        (Shape::Empty, "Empty^^^^0"),
        (Shape::Circle(0.5), "Circle^^0.5^^$0|1]"),
        (Shape::Pair(1, "a".into()), "Pair|a^1^^^$0|@2|1]]"),
        (Shape::Rect { w: 2, h: 3 }, "Rect|w|h^2|3^^^$0|$1|3|2|4]]"),
    ];
    for (value, want) in cases {
        assert_eq!(text(&value), want);
        assert_eq!(decode::<Shape>(want).unwrap(), value);
    }
    assert!(decode::<Shape>("^^^^$]").is_err());
    assert!(decode::<Shape>("Circle|Empty^^0.5^^$0|2|1|-3]").is_err());
    assert!(decode::<Shape>("Nope^^^^0").is_err());
}

#[test]
fn maps_structs_and_keys() {
    let mut map = BTreeMap::new();
    map.insert(10u32, "ten");
    map.insert(2, "");
    assert_eq!(text(&map), "2|10|ten^^^^$0|-4|1|2]");
    assert_eq!(
        decode::<BTreeMap<u32, String>>("2|10|ten^^^^$0|-4|1|2]")
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        decode::<BTreeMap<u8, u8>>("300^1^^^$0|1]"),
        Err(Error::NumberOutOfRange { target: "u8", .. })
    ));
    let keys: BTreeMap<bool, i8> = [(true, 1)].into_iter().collect();
    assert_eq!(text(&keys), "true^1^^^$0|1]");
    assert_eq!(
        decode::<BTreeMap<bool, i8>>("true^1^^^$0|1]").unwrap(),
        keys
    );
    let floats: BTreeMap<String, u8> = [(js_number_to_string(1.5), 1)].into_iter().collect();
    assert_eq!(
        decode::<BTreeMap<String, u8>>(&text(&floats)).unwrap(),
        floats
    );
    assert!(matches!(
        to_vec(&[(vec![1u8], 1u8)].into_iter().collect::<BTreeMap<_, _>>()),
        Err(Error::KeyMustBeString)
    ));
    assert_eq!(
        decode::<BTreeMap<String, u8>>("^1^^^$0|0]"),
        Err(Error::KeyNotString { offset: 6 })
    );

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct S {
        a: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<String>,
        c: (i8, bool),
    }
    let s = S {
        a: None,
        b: None,
        c: (-1, false),
    };
    assert_eq!(text(&s), "a|c^-1^^^$0|-3|1|@2|-2]]");
    assert_eq!(decode::<S>("a|c^-1^^^$0|-3|1|@2|-2]]").unwrap(), s);
    // Unknown keys are skipped, however deep their values.
    assert_eq!(
        decode::<S>("a|c|x|y^-1^^^$2|$3|@@]]]|0|-5|1|@4|-2]]").unwrap(),
        s
    );
    // A struct may also come as an array of its fields.
    assert_eq!(decode::<S>("^-1^^^@-3|-3|@0|-2]]").unwrap(), s);
}

#[test]
fn buffers() {
    assert_eq!(text(&Bytes(b"hi".to_vec())), "^2W|2X^^^*0|1]");
    assert_eq!(
        decode::<Bytes>("^2W|2X^^^*0|1]").unwrap(),
        Bytes(b"hi".to_vec())
    );
    assert_eq!(decode::<Vec<u8>>("^2W|2X^^^*0|1]").unwrap(), b"hi");
    assert_eq!(
        decode::<Value>("^2W|2X^^^*0|1]").unwrap(),
        json!([104, 105])
    );
    assert_eq!(decode::<Bytes>("^^^^*]").unwrap(), Bytes(Vec::new()));
    // A plain array of numbers is a sequence, not a Buffer.
    assert_eq!(text(&vec![1u8, 2]), "^1|2^^^@0|1]");
    for bad in [
        "^74^^^*0]",
        "a^^^^*0]",
        "^^1.5^^*0]",
        "^^^^*-3]",
        "^^^^*@]]",
    ] {
        assert!(
            matches!(decode::<Bytes>(bad), Err(Error::InvalidBufferItem { .. })),
            "{bad}"
        );
    }
}

#[test]
fn errors_read_as_maps() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename = "$serialize_json::Error")]
    struct Failure {
        message: String,
        stack: Option<String>,
        name: Option<String>,
        code: String,
    }
    let encoded = "message|no|stack|code|E1^^^^#0|1|2|-5|3|4]";
    let failure = Failure {
        message: "no".into(),
        stack: None,
        name: None,
        code: "E1".into(),
    };
    assert_eq!(decode::<Failure>(encoded).unwrap(), failure);
    assert_eq!(
        decode::<Value>(encoded).unwrap(),
        json!({"message": "no", "stack": null, "code": "E1"})
    );
    assert_eq!(
        text(&failure),
        "message|no|stack|name|code|E1^^^^#0|1|2|-3|3|-3|4|5]"
    );
}

#[test]
fn any_reads_every_token() {
    let value: Value =
        decode("a|b^1|-2|2W^0.5^LOYW3V28^@0|-4|2|3|5|6|-1|-2|-3|-5|$1|@]]|#]|*4]]").unwrap();
    assert_eq!(
        value,
        json!(["a", "", 1, -2, 0.5, 1_700_000_000_000u64, true, false, null, null,
               {"b": []}, {}, [104]])
    );
    assert_eq!(decode::<Value>("^^NaN^^0").unwrap(), Value::Null);
    assert!(decode::<f64>("^^NaN^^0").unwrap().is_nan());
}

#[test]
fn malformed_input_gives_typed_errors() {
    let cases: &[(&[u8], Error)] = &[
        (b"", Error::MissingSection { found: 1 }),
        (b"{\"a\":1}", Error::MissingSection { found: 1 }),
        (b"^^^", Error::MissingSection { found: 4 }),
        (b"^^^^", Error::UnexpectedEnd { offset: 4 }),
        (b"^^^^0^", Error::TrailingInput { offset: 5 }),
        (b"\xff^^^^-1", Error::InvalidUtf8 { offset: 0 }),
        (
            b"^^^^5",
            Error::DanglingIndex {
                offset: 4,
                index: 5,
                len: 0,
            },
        ),
        (b"a^1^^^$0|1", Error::MissingClose { opened_at: 6 }),
        (b"^^^^@", Error::MissingClose { opened_at: 4 }),
        (b"^^^^-6", Error::InvalidReference { offset: 4 }),
        (b"^^^^1.5", Error::InvalidReference { offset: 4 }),
        (b"^^^^ -1", Error::InvalidReference { offset: 4 }),
        (b"^^^^-1-1", Error::InvalidReference { offset: 4 }),
        (b"^^^^-1]", Error::TrailingInput { offset: 6 }),
        (b"^^^^-1|-1", Error::TrailingInput { offset: 6 }),
        (
            b"^^^^]",
            Error::UnexpectedToken {
                offset: 4,
                found: ']',
                expected: "a value",
            },
        ),
        (
            b"^^^^@|-1]",
            Error::UnexpectedToken {
                offset: 5,
                found: '|',
                expected: "a value or `]`",
            },
        ),
        (
            b"^^^^@-1|]",
            Error::UnexpectedToken {
                offset: 8,
                found: ']',
                expected: "a value",
            },
        ),
        (
            b"^^^^@-1||-1]",
            Error::UnexpectedToken {
                offset: 8,
                found: '|',
                expected: "a value",
            },
        ),
        (
            b"^^^^@-1@]]",
            Error::UnexpectedToken {
                offset: 7,
                found: '@',
                expected: "`|` or `]`",
            },
        ),
        (
            b"a^^^^$0]",
            Error::UnexpectedToken {
                offset: 7,
                found: ']',
                expected: "`|` and the value of the key before it",
            },
        ),
        (b"a^^^^$0|-1|-1]", Error::KeyNotString { offset: 11 }),
        (
            b"a||b^^^^0",
            Error::MalformedDictionary {
                section: Section::Strings,
                entry: 1,
                offset: 2,
                reason: "empty entry",
            },
        ),
        (
            b"^1|^^^0",
            Error::MalformedDictionary {
                section: Section::Integers,
                entry: 1,
                offset: 3,
                reason: "empty entry",
            },
        ),
        (
            b"^1.5^^^0",
            Error::MalformedDictionary {
                section: Section::Integers,
                entry: 0,
                offset: 1,
                reason: "not a base-36 integer",
            },
        ),
        (
            b"^^1.5x^^0",
            Error::MalformedDictionary {
                section: Section::Floats,
                entry: 0,
                offset: 2,
                reason: "not a JavaScript number",
            },
        ),
        (
            b"^^^-^0",
            Error::MalformedDictionary {
                section: Section::Dates,
                entry: 0,
                offset: 3,
                reason: "not a base-36 integer",
            },
        ),
        (
            b"ok|a%41^^^^0",
            Error::InvalidEscape {
                entry: 1,
                offset: 4,
            },
        ),
    ];
    for (input, want) in cases {
        let got = from_slice::<Value>(input);
        assert_eq!(
            got.as_ref(),
            Err(want),
            "{}",
            String::from_utf8_lossy(input)
        );
        // The message is printable.
        assert!(!want.to_string().is_empty());
    }
}

#[test]
fn tuples_must_match_their_length() {
    assert_eq!(decode::<(u8, u8)>("^1|2^^^@0|1]").unwrap(), (1, 2));
    assert!(matches!(
        decode::<(u8, u8)>("^1|2|3^^^@0|1|2]"),
        Err(Error::UnexpectedToken { found: '|', .. })
    ));
    assert!(decode::<(u8, u8, u8)>("^1|2^^^@0|1]").is_err());
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| format!("^^^^{}{}", "@".repeat(depth), "]".repeat(depth));
    assert!(decode::<Value>(&nested(MAX_DEPTH)).is_ok());
    assert_eq!(
        decode::<Value>(&nested(MAX_DEPTH + 1)),
        Err(Error::DepthLimit { limit: MAX_DEPTH })
    );
    assert_eq!(
        decode::<Value>(&format!("^^^^{}", "@".repeat(1_000_000))),
        Err(Error::DepthLimit { limit: MAX_DEPTH })
    );
    // Skipped values count too.
    #[derive(Deserialize)]
    struct Empty {}
    let deep_field = format!(
        "x^^^^$0|{}{}]",
        "@".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    assert_eq!(
        decode::<Empty>(&deep_field).err(),
        Some(Error::DepthLimit { limit: MAX_DEPTH })
    );

    let mut value = json!(1);
    for _ in 0..MAX_DEPTH {
        value = json!([value]);
    }
    let encoded = to_vec(&value).unwrap();
    assert_eq!(from_slice::<Value>(&encoded).unwrap(), value);
    assert_eq!(
        to_vec(&json!([value])),
        Err(Error::DepthLimit { limit: MAX_DEPTH })
    );
}

#[test]
fn dates_are_checked() {
    assert!(to_vec(&Date(8_640_000_000_000_000)).is_ok());
    assert!(matches!(
        to_vec(&Date(8_640_000_000_000_001)),
        Err(Error::DateOutOfRange { .. })
    ));
    // "NAN" is what Node writes for an invalid date; it is also the base-36 form of 30191.
    assert_eq!(decode::<Date>("^^^NAN^0").unwrap(), Date(30191));
}

#[test]
fn an_entry_is_referred_to_once() {
    let long = "x".repeat(1000);
    let input = format!("{long}^^^^@0|0]");
    assert_eq!(
        decode::<Vec<String>>(&input),
        Err(Error::ReusedIndex {
            offset: 1007,
            index: 0
        })
    );
    // Keys, skipped values and numbers count too.
    assert!(matches!(
        decode::<BTreeMap<String, String>>("k^^^^$0|0]"),
        Err(Error::ReusedIndex { .. })
    ));
    #[derive(Debug, Deserialize)]
    struct Empty {}
    assert!(matches!(
        decode::<Empty>("k|v^^^^$0|1|0|1]"),
        Err(Error::ReusedIndex { .. })
    ));
    assert!(matches!(
        decode::<Vec<f32>>("^^1.5^^@0|0]"),
        Err(Error::ReusedIndex { .. })
    ));
    // The fixed tokens are not entries.
    assert_eq!(
        decode::<Vec<Option<bool>>>("^^^^@-1|-1|-3|-5]").unwrap(),
        [Some(true), Some(true), None, None]
    );
}
