#![no_main]
//! Fuzz target `conn_object`: see `checks::conn_object` for what it checks.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| checks::conn_object(data));
