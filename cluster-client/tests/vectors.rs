//! The 16 packets captured from the Node package (`tests/data/node-vectors/`): each decodes to the
//! recorded fields, its invoke arguments split as recorded, and it re-encodes to the same bytes.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use cluster_client::protocol::args::Args;
use cluster_client::protocol::conn::Invoke;
use cluster_client::protocol::{
    ConnObject, HEADER_LEN, Header, Kind, Packet, PacketCodec, VERSION,
};
use serde_json::Value;
use tokio_util::codec::Decoder;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/node-vectors");

/// Files in the folder that are not frames.
const NOT_FRAMES: [&str; 3] = ["README.md", "index.json", "transcode_cases.json"];

fn frame_files() -> Vec<PathBuf> {
    let dir = Path::new(VECTORS);
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "the wire vectors are missing: cannot read {} ({e})",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read_dir entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            name.ends_with(".json") && !NOT_FRAMES.contains(&name)
        })
        .collect();
    files.sort();
    files
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd-length hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn int(decoded: &Value, field: &str) -> i64 {
    decoded[field]
        .as_i64()
        .unwrap_or_else(|| panic!("decoded.{field} is not an integer: {}", decoded[field]))
}

fn check_frame(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy();
    let file: Value = serde_json::from_str(&fs::read_to_string(path).expect("read vector"))
        .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
    let decoded = &file["decoded"];
    let bytes = unhex(file["hex"].as_str().expect("hex"));

    // The header, field by field.
    let header = Header::parse(&bytes).unwrap_or_else(|e| panic!("{name}: header: {e}"));
    assert_eq!(
        int(decoded, "version"),
        i64::from(bytes[0]),
        "{name}: version"
    );
    assert_eq!(bytes[0], VERSION, "{name}: version");
    let kind = match decoded["kind"].as_str() {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        other => panic!("{name}: decoded.kind {other:?}"),
    };
    assert_eq!(header.kind, kind, "{name}: kind");
    assert_eq!(
        int(decoded, "reqRes"),
        i64::from(kind.as_byte()),
        "{name}: reqRes"
    );
    assert_eq!(
        i64::from(header.reserved),
        int(decoded, "reserved"),
        "{name}: reserved"
    );
    assert_eq!(header.id, int(decoded, "id"), "{name}: id");
    assert_eq!(
        i64::from(header.timeout),
        int(decoded, "timeout"),
        "{name}: timeout"
    );
    assert_eq!(
        i64::from(header.conn_len),
        int(decoded, "connLength"),
        "{name}: connLength"
    );
    assert_eq!(
        i64::from(header.app_len),
        int(decoded, "appLength"),
        "{name}: appLength"
    );
    assert_eq!(
        header.frame_len(),
        bytes.len() as u64,
        "{name}: frame length"
    );

    // Through the stream codec, then as a whole frame: the same packet, nothing left over.
    let mut buf = BytesMut::from(&bytes[..]);
    let packet = PacketCodec::default()
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{name}: PacketCodec: {e}"))
        .unwrap_or_else(|| panic!("{name}: PacketCodec wants more bytes"));
    assert!(buf.is_empty(), "{name}: bytes left after the frame");
    let whole =
        Packet::decode(Bytes::from(bytes.clone())).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(whole, packet, "{name}: Packet::decode vs PacketCodec");
    assert_eq!(packet.kind, kind, "{name}: kind");
    assert_eq!(packet.reserved, header.reserved, "{name}: reserved");
    assert_eq!(packet.id, header.id, "{name}: id");
    assert_eq!(packet.timeout, header.timeout, "{name}: timeout");
    assert_eq!(
        packet.app.len(),
        header.app_len as usize,
        "{name}: app length"
    );
    assert_eq!(
        &packet.app[..],
        &bytes[HEADER_LEN + header.conn_len as usize..],
        "{name}: app"
    );

    // The connection object: from the recorded text, from the recorded JSON value, from the frame.
    let conn_text = decoded["connObjText"].as_str().expect("connObjText");
    assert_eq!(
        conn_text.as_bytes(),
        &bytes[HEADER_LEN..HEADER_LEN + header.conn_len as usize],
        "{name}: connObjText vs frame"
    );
    let from_text =
        ConnObject::parse(conn_text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let from_value: ConnObject = serde_json::from_value(decoded["connObj"].clone())
        .unwrap_or_else(|e| panic!("{name}: decoded.connObj: {e}"));
    assert_eq!(packet.conn, from_text, "{name}: conn object vs connObjText");
    assert_eq!(
        packet.conn, from_value,
        "{name}: conn object vs decoded.connObj"
    );
    assert_eq!(
        packet.conn.type_name(),
        decoded["connObj"]["type"].as_str().unwrap(),
        "{name}: type"
    );
    assert_eq!(
        packet.conn.to_json().unwrap(),
        conn_text,
        "{name}: conn object re-encoded"
    );

    // Invoke requests: the app object splits into the recorded arguments.
    if let ConnObject::Invoke(Invoke { arg_length, .. }) = packet.conn {
        let recorded = decoded["appArgs"].as_array().map_or(&[][..], Vec::as_slice);
        assert_eq!(
            recorded.len(),
            arg_length as usize,
            "{name}: appArgs vs argLength"
        );
        let mut args = Args::new(packet.app.clone(), arg_length);
        for (i, expected) in recorded.iter().enumerate() {
            let arg = args
                .next_arg()
                .unwrap_or_else(|e| panic!("{name}: arg {i}: {e}"));
            assert_eq!(
                arg.len() as i64,
                int(expected, "len"),
                "{name}: arg {i} len"
            );
            assert_eq!(
                &arg[..],
                expected["text"].as_str().expect("text").as_bytes(),
                "{name}: arg {i} bytes"
            );
        }
        args.finish()
            .unwrap_or_else(|e| panic!("{name}: args: {e}"));
    } else {
        assert!(
            decoded.get("appArgs").is_none(),
            "{name}: appArgs on a non-invoke"
        );
    }

    // Re-encoding gives the captured bytes exactly.
    let mut out = BytesMut::new();
    packet
        .encode(&mut out)
        .unwrap_or_else(|e| panic!("{name}: encode: {e}"));
    assert_eq!(&out[..], &bytes[..], "{name}: re-encoded bytes");
}

#[test]
fn every_captured_frame_decodes_and_reencodes() {
    let files = frame_files();
    for path in &files {
        check_frame(path);
    }
    assert_eq!(
        files.len(),
        16,
        "expected 16 frame files in {VECTORS}, found {files:?}"
    );
}

#[test]
fn captured_frames_stream_back_to_back() {
    // All frames of one direction concatenated and fed one byte at a time come back in order.
    let files = frame_files();
    assert!(!files.is_empty(), "no frame files in {VECTORS}");
    let frames: Vec<Vec<u8>> = files
        .iter()
        .map(|path| {
            let file: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
            unhex(file["hex"].as_str().unwrap())
        })
        .collect();
    let stream: Vec<u8> = frames.concat();
    let mut codec = PacketCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for byte in stream {
        buf.extend_from_slice(&[byte]);
        if let Some(packet) = codec.decode(&mut buf).unwrap() {
            got.push(packet);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(got.len(), frames.len());
    for (packet, frame) in got.iter().zip(&frames) {
        let mut out = BytesMut::new();
        packet.encode(&mut out).unwrap();
        assert_eq!(&out[..], &frame[..]);
    }
}
