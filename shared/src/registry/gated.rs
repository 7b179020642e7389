//! Store decorators that pass every call through a [`Gate`]: a bound on the calls in flight (the
//! server on AWS), or a fault plan (the fault-injection tests). Written once for both ports.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::{ArchiveKey, ArchiveStore, AuditDraft, ListPage, ListQuery, RowStore, StoredObject};
use crate::domain::{ConnectorRow, Status, StatusReason, Timestamp, Transition, Versions};
use crate::error::StoreError;

pub type StoreCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What every call of a gated store goes through.
pub trait Gate: Send + Sync + 'static {
    fn pass<'a, T: Send + 'a>(&'a self, call: StoreCall<'a, T>) -> StoreCall<'a, T>;
}

/// At most `n` store calls in flight; the rest wait their turn before they start, so their own
/// timeouts only count time spent at the store. For a store that slows down under many parallel
/// calls (a small stand-in, a throttled table) rather than one that scales with them.
pub struct InFlightLimit(Semaphore);

impl InFlightLimit {
    pub fn new(n: usize) -> Self {
        Self(Semaphore::new(n.max(1)))
    }
}

impl Gate for InFlightLimit {
    fn pass<'a, T: Send + 'a>(&'a self, call: StoreCall<'a, T>) -> StoreCall<'a, T> {
        Box::pin(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = self.0.acquire().await.map_err(|e| StoreError::Other(e.into()))?;
            call.await
        })
    }
}

pub struct GatedRows<G> {
    pub inner: Arc<dyn RowStore>,
    pub gate: Arc<G>,
}

#[async_trait]
impl<G: Gate> RowStore for GatedRows<G> {
    async fn get(&self, id: &str, status: Status) -> Result<Option<ConnectorRow>, StoreError> {
        self.gate.pass(self.inner.get(id, status)).await
    }

    async fn read_view(&self, id: &str, status: Status) -> Result<Option<Arc<RawValue>>, StoreError> {
        self.gate.pass(self.inner.read_view(id, status)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        self.gate.pass(self.inner.list(query)).await
    }

    async fn commit_registration(
        &self,
        rows: &[ConnectorRow],
        now: Timestamp,
        audit: &AuditDraft,
        versions: Versions,
    ) -> Result<(), StoreError> {
        self.gate.pass(self.inner.commit_registration(rows, now, audit, versions)).await
    }

    async fn commit_transition(
        &self,
        id: &str,
        to: Transition,
        reason: Option<&StatusReason>,
        now: Timestamp,
        audit: &AuditDraft,
    ) -> Result<Option<super::Transitioned>, StoreError> {
        self.gate.pass(self.inner.commit_transition(id, to, reason, now, audit)).await
    }

    async fn import_row(&self, row: &ConnectorRow) -> Result<super::Imported, StoreError> {
        self.gate.pass(self.inner.import_row(row)).await
    }
}

pub struct GatedArchives<G> {
    pub inner: Arc<dyn ArchiveStore>,
    pub gate: Arc<G>,
}

#[async_trait]
impl<G: Gate> ArchiveStore for GatedArchives<G> {
    fn staging_dir(&self) -> &Path {
        self.inner.staging_dir()
    }

    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError> {
        self.gate.pass(self.inner.put(key, staged)).await
    }

    async fn copy(&self, from: &ArchiveKey, to: &ArchiveKey) -> Result<(), StoreError> {
        self.gate.pass(self.inner.copy(from, to)).await
    }

    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError> {
        self.gate.pass(self.inner.delete(key)).await
    }

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError> {
        self.gate.pass(self.inner.exists(key)).await
    }

    async fn open(&self, key: &ArchiveKey) -> Result<Option<std::fs::File>, StoreError> {
        self.gate.pass(self.inner.open(key)).await
    }

    async fn presign_put(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        self.gate.pass(self.inner.presign_put(key, expiry)).await
    }

    async fn presign_get(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        self.gate.pass(self.inner.presign_get(key, expiry)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        self.gate.pass(self.inner.list(prefix)).await
    }
}
