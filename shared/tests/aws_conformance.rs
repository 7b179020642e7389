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

#[tokio::test]
async fn a_row_too_big_for_a_dynamodb_item_is_refused_clearly() {
    use registry_shared::error::StoreError;
    use serde_json::value::RawValue;
    let Some(sdk) = stand_in().await else { return };
    let store = DynamoRowStore::new(&sdk, unique_name("rows"));
    store.create_table_if_missing().await.unwrap();
    let now = conformance::at(0);
    let mut big = conformance::row("huge", "1.0.0", "batch", now);
    big.ui_spec = RawValue::from_string(format!(r#"{{"padding":"{}"}}"#, "x".repeat(420 * 1024))).unwrap();
    let error = store.commit_registration(&[big], now).await.unwrap_err();
    let StoreError::TooLarge(message) = error else { panic!("{error:?}") };
    assert!(message.contains("huge-1.0.0") && message.contains("DynamoDB"), "{message}");
    assert!(store.get("huge-1.0.0", registry_shared::domain::Status::Live).await.unwrap().is_none());
}
