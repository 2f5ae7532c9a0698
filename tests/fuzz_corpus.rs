//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own checks, on stable:
//! the fuzzer needs nightly, but every input it kept, and every seed, is checked on each test run.
//! The checks are `fuzz/checks.rs`, the same file the fuzz targets include.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

mod checks {
    include!("../fuzz/checks.rs");
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

/// Every file of `fuzz/corpus/<target>/`; fails when the folder is missing or empty.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS).join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the fuzz corpus of `{target}` is missing: cannot read {} ({e})",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read_dir entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the fuzz corpus of `{target}` is empty: {}",
        dir.display()
    );
    files
}

/// Runs `check` on every corpus file of `target`, naming each file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let files = corpus(target);
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = fs::read(path).expect("read corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} `{target}` corpus inputs failed (see the panics above):\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn packet_decoder_corpus() {
    replay("packet_decoder", checks::packet_decoder);
}

#[test]
fn conn_object_corpus() {
    replay("conn_object", checks::conn_object);
}

#[test]
fn args_framing_corpus() {
    replay("args_framing", checks::args_framing);
}

#[test]
fn app_bincode_corpus() {
    replay("app_bincode", |data| {
        checks::app_object(cluster_client::Codec::Bincode, data)
    });
}

#[test]
fn app_json_corpus() {
    replay("app_json", |data| {
        checks::app_object(cluster_client::Codec::Json, data)
    });
}

#[test]
fn app_serialize_json_corpus() {
    replay("app_serialize_json", |data| {
        checks::app_object(cluster_client::Codec::SerializeJson, data)
    });
}

#[test]
fn app_postcard_corpus() {
    replay("app_postcard", |data| {
        checks::app_object(cluster_client::Codec::Postcard, data)
    });
}
