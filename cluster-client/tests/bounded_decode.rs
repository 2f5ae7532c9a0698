//! Every codec's decode is bounded by its input: a length prefix that claims more than the input
//! holds is a `CodecError::Decode`, and the largest single allocation made while decoding stays
//! within a small multiple of the input (plus serde's own cap on what a sequence or map
//! pre-allocates). The allocator of this test binary records the largest request of each thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Debug;

use bytes::BytesMut;
use cluster_client::transcode::{Codec, CodecError, Transcode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest allocation each thread asks for. A request over
/// 1 GiB fails, as it would on a small machine, so a regression fails loudly instead of paging.
struct Recording;

fn record(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is passed on to `System` unchanged; only sizes are recorded.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        if layout.size() > 1 << 30 {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        if new_size > 1 << 30 {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// serde pre-allocates at most 1 MiB of elements for a sequence or map whose length it is told; a
/// hash map's table rounds that up to a power of two of buckets plus control bytes (2.1 MB seen).
const SERDE_PREALLOC: usize = 4 << 20;

/// Decodes `bytes` as `T` and returns the result with the largest allocation made meanwhile.
fn decode_measured<T: DeserializeOwned>(
    codec: Codec,
    bytes: &[u8],
) -> (Result<T, CodecError>, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = codec.decode::<T>(bytes);
    (result, LARGEST.with(Cell::get))
}

/// Asserts that `bytes` do not decode as `T`, without a large allocation.
fn refused<T: DeserializeOwned + Debug>(codec: Codec, what: &str, bytes: &[u8]) {
    let (result, largest) = decode_measured::<T>(codec, bytes);
    match result {
        Err(CodecError::Decode { len, .. }) => assert_eq!(len, bytes.len()),
        other => panic!("{codec} {what}: expected a decode error, got {other:?}"),
    }
    // bincode's claim limit: the power of 4 at or above 16 bytes per input byte, at least 1 KiB.
    let bound = SERDE_PREALLOC + 64 * bytes.len().max(16);
    assert!(
        largest <= bound,
        "{codec} {what}: {} input bytes made a {largest}-byte allocation (bound {bound})",
        bytes.len()
    );
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Nested {
    name: String,
    tags: Vec<String>,
    counts: HashMap<String, u64>,
    rows: Vec<Vec<u64>>,
    note: Option<Box<str>>,
}

/// A length of 2^40, as bincode's variable-length integer: `0xfd`, then a little-endian u64.
#[cfg(feature = "bincode")]
const BINCODE_2_40: [u8; 9] = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

/// A length of 2^40, as postcard's LEB128 varint.
#[cfg(feature = "postcard")]
const POSTCARD_2_40: [u8; 6] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20];

/// Every place a length can lie, for one codec's encoding of a 2^40 length.
fn lying_lengths(codec: Codec, huge: &[u8]) {
    refused::<String>(codec, "a string", huge);
    refused::<Box<str>>(codec, "a boxed str", huge);
    refused::<Vec<u8>>(codec, "a byte vector", huge);
    refused::<Vec<u64>>(codec, "a u64 vector", huge);
    refused::<Vec<String>>(codec, "a vector of strings", huge);
    refused::<HashMap<String, u64>>(codec, "a map", huge);
    // A vector of one string whose own length lies.
    let inner = [&[1u8][..], huge].concat();
    refused::<Vec<String>>(codec, "a string inside a vector", &inner);
    refused::<Vec<Vec<u64>>>(codec, "a vector inside a vector", &inner);
    // The struct's first field, a string, lies; then its second field does, after a good name.
    refused::<Nested>(codec, "a struct's first string", huge);
    let second = [&[2u8, b'o', b'k'][..], huge].concat();
    refused::<Nested>(codec, "a struct's vector", &second);
    // Many lying strings in a row: the first one stops the decode.
    let repeated = huge.repeat(1000);
    refused::<(String, String)>(codec, "strings repeated", &repeated);
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_lengths_are_bounded_by_the_input() {
    lying_lengths(Codec::Bincode, &BINCODE_2_40);
}

#[cfg(feature = "postcard")]
#[test]
fn postcard_lengths_are_bounded_by_the_input() {
    lying_lengths(Codec::Postcard, &POSTCARD_2_40);
}

#[test]
fn json_is_bounded_by_the_input() {
    refused::<String>(Codec::Json, "an unterminated string", b"\"abc");
    refused::<Vec<u64>>(Codec::Json, "an unterminated array", b"[1,2,");
    refused::<Vec<Vec<u64>>>(Codec::Json, "deep nesting", &b"[".repeat(100_000));
    refused::<Nested>(
        Codec::Json,
        "a truncated object",
        br#"{"name":"x","tags":["#,
    );
}

/// The codecs compiled in, but serialize-json: it has no `u128` nor integers past 2^53, and its own
/// size and round-trip tests (`tests/serialize_json.rs`); its bounds are below.
fn all_codecs() -> impl Iterator<Item = Codec> {
    Codec::ALL
        .into_iter()
        .filter(|codec| codec.available().is_ok() && *codec != Codec::SerializeJson)
}

/// serialize-json's structure refers to a dictionary: references that would make a decode build
/// far more than the input (one long string referred to many times), nesting past the depth limit,
/// and references past the dictionary are refused, within the same allocation bound.
#[test]
fn serialize_json_is_bounded_by_the_input() {
    let codec = Codec::SerializeJson;
    let long = "x".repeat(64 * 1024);
    let reused = format!("{long}^^^^@{}]", vec!["0"; 20_000].join("|"));
    refused::<Vec<String>>(
        codec,
        "one string referred to 20000 times",
        reused.as_bytes(),
    );
    let deep = format!("^^^^{}{}", "@".repeat(100_000), "]".repeat(100_000));
    refused::<serde_json::Value>(codec, "deep nesting", deep.as_bytes());
    refused::<Vec<String>>(codec, "a dangling reference", b"a^^^^@0|ZZZZZZ]");
    refused::<Vec<String>>(codec, "a missing close", b"a|b^^^^@0|1");
    let huge = format!("^{}^^^0", "Z".repeat(5000));
    refused::<u64>(codec, "a huge base-36 number", huge.as_bytes());
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(codec: Codec, value: &T) {
    let mut buf = BytesMut::new();
    codec.encode(value, &mut buf).expect("encodes");
    let back: T = codec
        .decode(&buf)
        .unwrap_or_else(|e| panic!("{codec}: {} bytes do not decode: {e}", buf.len()));
    assert_eq!(&back, value, "{codec}");
}

/// The bound never refuses a valid value: strings of every length around each size class, one
/// filling a whole 4 MiB input, and many short strings whose lengths add up to the whole input.
#[test]
fn valid_values_of_every_size_decode() {
    for codec in all_codecs() {
        for shift in [9u32, 12, 15, 18, 21] {
            let class = 1usize << shift;
            for len in [class - 10, class - 1, class, class + 1, class + 10] {
                round_trip(codec, &"s".repeat(len));
                round_trip(codec, &vec![7u8; len]);
            }
        }
        round_trip(codec, &"w".repeat(4 << 20));
        // Numbers that take one byte each but 8 or 16 in memory (bincode claims the latter).
        round_trip(codec, &vec![0u64; 100]);
        round_trip(codec, &vec![1u128; 5000]);
        round_trip(codec, &(0u8, vec![(); 3], Some(0u16), 0i128));
        let many: Vec<String> = (0..20_000).map(|i| format!("{i:05}")).collect();
        round_trip(codec, &many);
        round_trip(
            codec,
            &Nested {
                name: "n".repeat(600),
                tags: vec!["t".repeat(300); 3],
                counts: HashMap::from([("k".repeat(520), 1)]),
                rows: vec![vec![u64::MAX; 100]; 10],
                note: Some("b".repeat(513).into_boxed_str()),
            },
        );
    }
}
