#![no_main]
//! Fuzz target `app_serialize_json`: see `checks::app_object` for what it checks.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::app_object(cluster_client::Codec::SerializeJson, data));
