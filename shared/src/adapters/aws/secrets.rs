//! Secrets Manager: the text of a secret, read once when a function starts.

use aws_config::SdkConfig;

use super::classify;
use crate::error::StoreError;

/// The secret string of `secret_id` (a name or an ARN).
pub async fn secret_string(sdk: &SdkConfig, secret_id: &str) -> Result<String, StoreError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let answer =
        client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| classify("reading a secret", e))?;
    answer
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("the secret {secret_id} holds no text")))
}
