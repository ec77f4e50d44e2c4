#![no_main]
//! See `herald::fuzzing::request_decoder` for the property checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::request_decoder(data));
