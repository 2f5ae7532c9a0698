#![no_main]
//! Fuzz target `packet_decoder`: see `checks::packet_decoder` for what it checks.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::packet_decoder(data));
