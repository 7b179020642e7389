//! The black-box tests as one test binary: one link of the AWS SDK and the server instead of one
//! per suite. Memory measurements stay in a binary of their own (`memory.rs`), where no other
//! test's allocations count.

mod api;
mod auth;
mod differential;
mod faults;
mod fuzz_inputs;
mod lambda_events;
mod large_lists;
mod limits;
mod obsrv;
mod openapi;
mod template;
mod template_storage;
mod versions;
