//! Responses the fuzz driver (fuzz/, target `responses`) found, replayed through the same
//! decode path gregor's connection uses: response header, allocation guard, kafka-protocol.
//!
//! Each `api-versions-v3-*` frame holds an unsigned varint of six to ten bytes where
//! kafka-protocol reads at most five (a `u32`). The guard used to read it as a ten-byte `u64`
//! and skip past it, while kafka-protocol stopped after five bytes and read the rest as an
//! array count it then allocated for: one 42-byte frame from a hostile broker aborted the
//! process (capacity overflow) or allocated gigabytes. The guard now reads varints exactly
//! as kafka-protocol does and refuses a longer one, so every such frame is an error before
//! kafka-protocol sees it. Before the fix this test aborted.

use std::path::PathBuf;

fn findings() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings/responses");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("finding"))
        })
        .filter(|(name, _)| name.ends_with(".bin"))
        .collect();
    out.sort();
    out
}

#[test]
fn over_long_varints_in_api_versions_are_refused_before_decoding() {
    let cases = findings();
    assert!(
        cases.len() >= 14,
        "expected the 14 ApiVersions findings, found {}",
        cases.len()
    );
    for (name, input) in cases {
        let (index, frame) = input.split_first().expect("non-empty finding");
        let (response, version) = gregor_client::fuzzing::RESPONSES
            [*index as usize % gregor_client::fuzzing::RESPONSES.len()];
        let result = gregor_client::fuzzing::decode_response(*index as usize, frame);
        let err = result.expect_err(&format!("{name}: {response} v{version} must be refused"));
        assert!(
            err.contains("varint") || err.contains("overrun") || err.contains("declares"),
            "{name}: the error names what was wrong: {err}"
        );
    }
}
