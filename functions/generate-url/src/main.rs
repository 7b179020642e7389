//! `POST /v2/files/generate-url` as a Lambda function: presigned S3 URLs. Needs only S3.

use registry_shared::api::{self, Api};
use registry_shared::lambda::{self, Error, authenticator_from_env, files_state_from_env};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let state = files_state_from_env().await?;
    let auth = authenticator_from_env()?;
    lambda::run(Api::FilesGenerateUrl, auth.clone(), move |request| {
        let (state, auth) = (state.clone(), auth.clone());
        async move { api::generate_url(&state, &auth, request).await }
    })
    .await
}
