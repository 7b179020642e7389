//! Replays the fuzz targets' seeds and every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`), through the very functions the fuzz targets call, so that a
//! fixed crash stays fixed without a fuzzer.

use std::path::Path;

use registry_shared::test_support::fuzz::{replay, seeds};

fn regressions(target: &str) -> Vec<Vec<u8>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.file_name().is_some_and(|n| n != ".keep"))
        .collect();
    inputs.sort();
    inputs.into_iter().map(|path| std::fs::read(path).expect("input")).collect()
}

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    let inputs: Vec<_> = seeds().into_iter().filter(|(t, _, _)| *t == target).map(|(_, _, bytes)| bytes).collect();
    assert!(!inputs.is_empty(), "no seeds for {target}");
    inputs
}

#[test]
fn distribution_inputs() {
    replay("distribution", seeds_of("distribution").into_iter().chain(regressions("distribution")));
}

#[test]
fn archive_structure_inputs() {
    replay("archive_structure", seeds_of("archive_structure").into_iter().chain(regressions("archive_structure")));
}

#[test]
fn metadata_inputs() {
    replay("metadata", seeds_of("metadata").into_iter().chain(regressions("metadata")));
}

#[test]
fn api_request_inputs() {
    replay("api_request", seeds_of("api_request").into_iter().chain(regressions("api_request")));
}
