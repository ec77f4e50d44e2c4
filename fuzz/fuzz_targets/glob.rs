#![no_main]
//! See `herald::fuzzing::glob_agrees` for the property checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::glob_agrees(data));
