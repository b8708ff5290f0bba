//! libFuzzer target `config`: `cargo fuzz run -s none --features libfuzzer config` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("config", data));
