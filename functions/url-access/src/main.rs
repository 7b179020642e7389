//! `POST /v2/files/url-access` as a Lambda function: presigned S3 read URLs of registered
//! archives for Obsrv's runtime pods. API Gateway admits only IAM-signed callers; needs only S3.

use registry_shared::api::{self, Api};
use registry_shared::lambda::{self, Error, files_state_from_env, system_authenticator_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let state = files_state_from_env().await?;
    lambda::run(Api::FilesUrlAccess, system_authenticator_from_env()?, move |request| {
        let state = state.clone();
        async move { api::url_access(&state, request).await }
    })
    .await
}
