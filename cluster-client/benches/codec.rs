//! Codec micro-benchmarks: encoding and decoding an invoke packet (header, `invoke` connection object,
//! one framed argument) and a subscription push (`subscribe_result` with an item), with each
//! application-object codec compiled in.
//!
//! ```text
//! cargo bench -p cluster-client --bench codec                       # bincode and json
//! cargo bench -p cluster-client --bench codec --features postcard   # and postcard
//! ```

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cluster_client::Codec;
use cluster_client::protocol::args::{Args, push_arg_with};
use cluster_client::protocol::conn::{Invoke, InvokeResult, SubscribeResult};
use cluster_client::protocol::{ConnObject, Packet};
use cluster_client::transcode::Transcode;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

/// A subscription item like the end-to-end benchmark's.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    seq: u64,
    sent_ns: u64,
    pad: String,
}

fn codecs() -> Vec<Codec> {
    [
        #[cfg(feature = "bincode")]
        Codec::Bincode,
        Codec::Json,
        #[cfg(feature = "postcard")]
        Codec::Postcard,
    ]
    .into()
}

fn payload(size: usize) -> String {
    (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// What a follower does per call: encode the argument into the framing, then the packet.
fn encode_invoke(codec: Codec, argument: &str, out: &mut BytesMut) -> Bytes {
    let mut app = BytesMut::new();
    push_arg_with(&mut app, |buf| codec.encode(argument, buf)).expect("encodable");
    let conn = ConnObject::Invoke(Invoke {
        method: "echo".to_owned(),
        arg_length: 1,
        oneway: false,
    });
    out.clear();
    Packet::request(42, 3000, conn, app.freeze())
        .encode(out)
        .expect("encodable");
    out.split().freeze()
}

/// What a leader does per call: decode the packet, then the argument.
fn decode_invoke(codec: Codec, frame: Bytes) -> String {
    let packet = Packet::decode(frame).expect("a packet");
    let ConnObject::Invoke(Invoke { arg_length, .. }) = packet.conn else {
        panic!("not an invoke");
    };
    let mut args = Args::new(packet.app, arg_length);
    let argument = args.next_arg().expect("one argument");
    codec.decode(&argument).expect("a string")
}

/// What a leader does per item (once for all its followers).
fn encode_push(codec: Codec, item: &Item, out: &mut BytesMut) -> Bytes {
    let mut app = BytesMut::new();
    codec.encode(item, &mut app).expect("encodable");
    let conn = ConnObject::SubscribeResult(SubscribeResult {
        key: "$$inner$$__\"bench\"".to_owned(),
        method: Some("feed".to_owned()),
        end: None,
        typed: false,
        request: None,
    });
    out.clear();
    Packet::request(7, 0, conn, app.freeze())
        .encode(out)
        .expect("encodable");
    out.split().freeze()
}

/// What a follower does per item.
fn decode_push(codec: Codec, frame: Bytes) -> Item {
    let packet = Packet::decode(frame).expect("a packet");
    codec.decode(&packet.app).expect("an item")
}

fn invoke(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke");
    for size in [100, 4096] {
        let argument = payload(size);
        for codec in codecs() {
            let mut out = BytesMut::new();
            let frame = encode_invoke(codec, &argument, &mut out);
            group.throughput(Throughput::Elements(1));
            let id = |op: &str| BenchmarkId::new(format!("{op}/{codec}"), size);
            group.bench_function(id("encode"), |b| {
                b.iter(|| encode_invoke(codec, black_box(&argument), &mut out))
            });
            group.bench_function(id("decode"), |b| {
                b.iter(|| decode_invoke(codec, black_box(frame.clone())))
            });
        }
    }
    group.finish();
}

fn push(c: &mut Criterion) {
    let mut group = c.benchmark_group("push");
    let item = Item {
        seq: 123_456,
        sent_ns: 1_700_000_000_000_000_000,
        pad: payload(100),
    };
    for codec in codecs() {
        let mut out = BytesMut::new();
        let frame = encode_push(codec, &item, &mut out);
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("encode", codec), |b| {
            b.iter(|| encode_push(codec, black_box(&item), &mut out))
        });
        group.bench_function(BenchmarkId::new("decode", codec), |b| {
            b.iter(|| decode_push(codec, black_box(frame.clone())))
        });
    }
    group.finish();
}

/// The connection object alone: always JSON, whatever the codec.
fn conn_object(c: &mut Criterion) {
    let mut group = c.benchmark_group("conn_object");
    let cases = [
        (
            "invoke",
            ConnObject::Invoke(Invoke {
                method: "echo".to_owned(),
                arg_length: 1,
                oneway: false,
            }),
        ),
        (
            "invoke_result",
            ConnObject::InvokeResult(InvokeResult {
                success: true,
                fault: None,
            }),
        ),
        (
            "subscribe_result",
            ConnObject::SubscribeResult(SubscribeResult {
                key: "$$inner$$__\"bench\"".to_owned(),
                method: Some("feed".to_owned()),
                end: None,
                typed: false,
                request: None,
            }),
        ),
    ];
    for (name, conn) in cases {
        let json = conn.to_json().expect("encodable");
        group.bench_function(BenchmarkId::new("to_json", name), |b| {
            b.iter(|| black_box(&conn).to_json())
        });
        group.bench_function(BenchmarkId::new("parse", name), |b| {
            b.iter(|| ConnObject::parse(black_box(json.as_bytes())))
        });
    }
    group.finish();
}

criterion_group!(benches, invoke, push, conn_object);
criterion_main!(benches);
