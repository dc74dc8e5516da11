//! Replays the fuzz seeds and every crash the fuzzers found (`testdata/fuzz/`) through the
//! same harnesses the `fuzz/` targets run, so a fixed crash stays fixed.

use hyperfleet_tracing::testing::fuzz::{decode_message, extract_extensions};
use std::path::Path;

/// Runs `harness` on every file of `testdata/fuzz/{dir}`; returns how many it accepted.
fn replay(dir: &str, harness: fn(&[u8]) -> bool) -> (usize, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz")
        .join(dir);
    let mut files = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let file = entry.unwrap().path();
        let input = std::fs::read(&file).unwrap();
        let outcome = std::panic::catch_unwind(|| harness(&input));
        match outcome {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("{} fails again", file.display()),
        }
        files += 1;
    }
    (files, accepted)
}

#[test]
fn decode_corpus_replays_without_a_finding() {
    let (files, decoded) = replay("decode", decode_message);
    assert!(files >= 7, "only {files} seeds");
    // The four wire formats decode, so the harness reaches past the decoder.
    assert!(decoded >= 4, "only {decoded} of {files} seeds decoded");
}

#[test]
fn extract_corpus_replays_without_a_finding() {
    let (files, extracted) = replay("extract", extract_extensions);
    assert!(files >= 9, "only {files} seeds");
    // Valid, unknown flags, future version, 33 members, long tracestate and baggage give a parent.
    assert!(
        extracted >= 5,
        "only {extracted} of {files} seeds gave a parent"
    );
}
