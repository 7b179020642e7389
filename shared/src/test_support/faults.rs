//! Fault injection: store wrappers that fail the n-th call across both ports, either before the
//! call reaches the store (it did not happen) or after (it happened, but the caller hears of a
//! failure, as when a response is lost to a timeout).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::StoreError;
use crate::registry::{Gate, GatedArchives, GatedRows, StoreCall};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails without reaching the store.
    Before,
    /// The call reaches the store, then reports a failure.
    After,
}

/// Counts the calls of both wrapped stores and fails the armed one.
#[derive(Debug, Default)]
pub struct FaultPlan {
    calls: AtomicUsize,
    fail_at: AtomicUsize,
    fault: std::sync::Mutex<Option<Fault>>,
}

impl FaultPlan {
    /// Fails the `n`-th call from now on (1-based).
    pub fn arm(&self, n: usize, fault: Fault) {
        self.calls.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
        *self.fault.lock().unwrap() = Some(fault);
    }

    pub fn disarm(&self) {
        *self.fault.lock().unwrap() = None;
    }

    /// Calls made since `arm`.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next(&self) -> Option<Fault> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = *self.fault.lock().unwrap();
        fault.filter(|_| n == self.fail_at.load(Ordering::SeqCst))
    }
}

impl Gate for FaultPlan {
    fn pass<'a, T: Send + 'a>(&'a self, call: StoreCall<'a, T>) -> StoreCall<'a, T> {
        let injected = || StoreError::Unavailable(anyhow::anyhow!("injected fault"));
        let fault = self.next();
        Box::pin(async move {
            match fault {
                Some(Fault::Before) => Err(injected()),
                Some(Fault::After) => {
                    call.await?;
                    Err(injected())
                }
                None => call.await,
            }
        })
    }
}

/// The stores, failing as the plan says.
pub type FaultyRows = GatedRows<FaultPlan>;
pub type FaultyArchives = GatedArchives<FaultPlan>;

/// The plan at the level of the SDK: every HTTP call a client built from the returned
/// configuration makes (each `GetItem`, `Query`, `TransactWriteItems`, S3 request or part) counts,
/// and the armed one fails before it is sent or after its answer came, as a lost connection would.
/// The injected failure is one the SDK does not retry, so that it reaches the store; every other
/// failure is retried as the configuration says, as in production (with retries off, one slow
/// answer of a loaded stand-in, past the attempt timeout, would fail a call no fault was armed for).
#[cfg(feature = "aws")]
pub fn faulty_sdk_config(sdk: &aws_config::SdkConfig, plan: std::sync::Arc<FaultPlan>) -> aws_config::SdkConfig {
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    #[derive(Debug)]
    struct FaultyConnector {
        inner: SharedHttpConnector,
        plan: std::sync::Arc<FaultPlan>,
    }

    impl HttpConnector for FaultyConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let fault = self.plan.next();
            let inner = self.inner.clone();
            HttpConnectorFuture::new(async move {
                // Unclassified, so not retried: an I/O error or a timeout would be.
                let injected = || ConnectorError::other("injected fault".into(), None);
                match fault {
                    Some(Fault::Before) => Err(injected()),
                    Some(Fault::After) => {
                        let _ = inner.call(request).await;
                        Err(injected())
                    }
                    None => inner.call(request).await,
                }
            })
        }
    }

    let inner = sdk.http_client().expect("the SDK configuration has an HTTP client");
    let client = http_client_fn(move |settings, components| {
        let inner = inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, plan: plan.clone() })
    });
    sdk.to_builder().http_client(client).build()
}
