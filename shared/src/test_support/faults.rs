//! Fault injection: store wrappers that fail the n-th call across both ports, either before the
//! call reaches the store (it did not happen) or after (it happened, but the caller hears of a
//! failure, as when a response is lost to a timeout).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{ConnectorRow, Status, Timestamp};
use crate::error::StoreError;
use crate::registry::{ArchiveKey, ArchiveStore, ListPage, ListQuery, RowStore};

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

    async fn run<T>(&self, call: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let injected = || StoreError::Unavailable(anyhow::anyhow!("injected fault"));
        match self.next() {
            Some(Fault::Before) => Err(injected()),
            Some(Fault::After) => {
                call.await?;
                Err(injected())
            }
            None => call.await,
        }
    }
}

pub struct FaultyRows {
    pub inner: Arc<dyn RowStore>,
    pub plan: Arc<FaultPlan>,
}

#[async_trait]
impl RowStore for FaultyRows {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        self.plan.run(self.inner.get(id, status)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.plan.run(self.inner.list(query)).await
    }

    async fn commit_registration(&self, rows: &[ConnectorRow], now: Timestamp) -> Result<(), StoreError> {
        self.plan.run(self.inner.commit_registration(rows, now)).await
    }
}

pub struct FaultyArchives {
    pub inner: Arc<dyn ArchiveStore>,
    pub plan: Arc<FaultPlan>,
}

#[async_trait]
impl ArchiveStore for FaultyArchives {
    fn staging_dir(&self) -> &Path {
        self.inner.staging_dir()
    }

    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError> {
        self.plan.run(self.inner.put(key, staged)).await
    }

    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError> {
        self.plan.run(self.inner.delete(key)).await
    }

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError> {
        self.plan.run(self.inner.exists(key)).await
    }

    async fn open(&self, key: &ArchiveKey) -> Result<Option<std::fs::File>, StoreError> {
        self.plan.run(self.inner.open(key)).await
    }

    async fn presign_put(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        self.plan.run(self.inner.presign_put(key, expiry)).await
    }

    async fn presign_get(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        self.plan.run(self.inner.presign_get(key, expiry)).await
    }
}
