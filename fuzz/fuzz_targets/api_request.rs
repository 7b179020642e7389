//! Every route's request parsing, through the router and handlers over an embedded store.
#![no_main]

use std::sync::LazyLock;

use registry_shared::test_support::fuzz::ApiHarness;

// One store and runtime for the whole run; each input is one request.
static HARNESS: LazyLock<ApiHarness> = LazyLock::new(ApiHarness::new);

libfuzzer_sys::fuzz_target!(|data: &[u8]| HARNESS.request(data));
