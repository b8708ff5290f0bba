//! libFuzzer target `avro`: `cargo fuzz run -s none --features libfuzzer avro` (from the repository root).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor_fuzz::libfuzzer("avro", data));
