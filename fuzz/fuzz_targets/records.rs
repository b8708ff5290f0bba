//! libFuzzer target `records`: `cargo fuzz run -s none --features libfuzzer records` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("records", data));
