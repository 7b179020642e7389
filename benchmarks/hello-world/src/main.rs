//! Answers every invocation with `{"hello": "world"}`: what any Rust function costs to start,
//! for `benchmarks/scripts/cold-start` to compare the registry's functions with.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async { Ok::<_, Error>(json!({"hello": "world"})) })).await
}
