//! libFuzzer target `assignment`: `cargo fuzz run -s none --features libfuzzer assignment` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("assignment", data));
