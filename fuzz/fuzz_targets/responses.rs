//! libFuzzer target `responses`: `cargo fuzz run -s none --features libfuzzer responses` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("responses", data));
