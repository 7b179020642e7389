//! The Lambda REQUEST authorizer of `AuthMode=token`: verifies the token of each request (as the
//! local server does: signature, expiry, issuer and audience when configured) and passes its roles
//! on to the functions, which apply the role policy. Needs no AWS permission and no AWS client.

use registry_shared::lambda::{self, Error, Settings, authorizer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    authorizer::run(Settings::from_env()?.verifier()?).await
}
