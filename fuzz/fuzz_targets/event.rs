//! libFuzzer target `event`: `cargo fuzz run -s none --features libfuzzer event` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("event", data));
