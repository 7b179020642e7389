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
#[derive(Default)]
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
