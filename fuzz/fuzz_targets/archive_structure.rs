//! Tar header sequences and zip header edits built from the input, through the archive reader.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| registry_shared::test_support::fuzz::archive_structure(data));
