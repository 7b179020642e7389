//! The store conformance suite against the AWS adapters, on the local S3/DynamoDB stand-in.

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::registry::RowStore;
use registry_shared::test_support::aws::{stand_in, unique_name};
use registry_shared::test_support::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_row_store_conforms() {
    let Some(sdk) = stand_in().await else { return };
    conformance::row_store_suite(|| {
        let sdk = sdk.clone();
        async move {
            let store = DynamoRowStore::new(&sdk, unique_name("rows"));
            store.create_table_if_missing().await.expect("table");
            Arc::new(store) as Arc<dyn RowStore>
        }
    })
    .await;
}

#[tokio::test]
async fn s3_archive_store_conforms() {
    let Some(sdk) = stand_in().await else { return };
    let store = S3ArchiveStore::new(&sdk, unique_name("archives"), "").unwrap();
    store.create_bucket_if_missing().await.unwrap();
    store.create_bucket_if_missing().await.expect("creating twice is fine");
    conformance::archive_store_suite(&store).await;
}

#[tokio::test]
async fn s3_archive_store_uploads_large_archives_in_parts() {
    let Some(sdk) = stand_in().await else { return };
    let store = S3ArchiveStore::new(&sdk, unique_name("archives"), "tenant-a/").unwrap();
    store.create_bucket_if_missing().await.unwrap();
    conformance::large_archive_case(&store, 40 * 1024 * 1024).await;
}
