//! The archive reader (tar, tar.gz, zip) and row construction over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| registry_shared::test_support::fuzz::distribution(data));
