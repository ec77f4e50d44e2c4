#![no_main]
//! See `herald::fuzzing::session` for the property checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::session(data));
