#![no_main]
//! Fuzz target `args_framing`: see `checks::args_framing` for what it checks.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::args_framing(data));
