//! Access to the local S3/DynamoDB stand-in the test command starts (`scripts/test`).

use aws_config::SdkConfig;

/// The SDK configuration for the stand-in, through the same `sdk_config` production uses (the
/// test command exports `AWS_ENDPOINT_URL` and dummy credentials). Without a stand-in the AWS
/// tests fail loudly, unless `REGISTRY_SKIP_AWS_TESTS=1` says to skip them.
pub async fn stand_in() -> Option<SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        if std::env::var("REGISTRY_SKIP_AWS_TESTS").as_deref() == Ok("1") {
            eprintln!("AWS tests skipped: REGISTRY_SKIP_AWS_TESTS=1");
            return None;
        }
        panic!(
            "the AWS tests need the local S3/DynamoDB stand-in: run them with scripts/test, \
             or set REGISTRY_SKIP_AWS_TESTS=1 to skip them"
        );
    }
    Some(crate::adapters::aws::sdk_config().await)
}

/// A name no other test uses, for a table or a bucket.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// An SDK configuration with the production settings, pointed at `endpoint` with dummy
/// credentials: for tests against endpoints that misbehave on purpose.
pub async fn config_for_endpoint(endpoint: &str) -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests");
    crate::adapters::aws::config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}
