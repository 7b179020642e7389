//! The store conformance suite against the AWS adapters, on the local S3/DynamoDB stand-in.

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::domain::Versions;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_outbox_conforms() {
    let Some(sdk) = stand_in().await else { return };
    conformance::outbox_suite(|| {
        let sdk = sdk.clone();
        async move {
            let store = DynamoRowStore::new(&sdk, unique_name("outbox"));
            store.create_table_if_missing().await.expect("table");
            Arc::new(store)
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

/// Listing pages through `ListObjectsV2` (two keys a page here) and gives keys without the
/// store's own key prefix.
#[tokio::test]
async fn s3_archive_store_lists_page_by_page_under_its_key_prefix() {
    let Some(sdk) = stand_in().await else { return };
    let store = S3ArchiveStore::new(&sdk, unique_name("archives"), "tenant-a/").unwrap().with_list_page(2);
    store.create_bucket_if_missing().await.unwrap();
    conformance::archive_listing_case(&store).await;
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
    let error = store.commit_registration(&[big], now, &conformance::draft(), Versions::Immutable).await.unwrap_err();
    let StoreError::TooLarge(message) = error else { panic!("{error:?}") };
    assert!(message.contains("huge-1.0.0") && message.contains("DynamoDB"), "{message}");
    assert!(store.get("huge-1.0.0", registry_shared::domain::Status::Live).await.unwrap().is_none());
}

async fn table_store(sdk: &aws_config::SdkConfig, table: &str) -> DynamoRowStore {
    let store = DynamoRowStore::new(sdk, table);
    store.create_table_if_missing().await.unwrap();
    store
}

/// Two instances on one table, as two Lambda instances: what one commits, the other lists at once,
/// though it had listed (and kept) the rows before.
#[tokio::test]
async fn dynamodb_lists_on_another_instance_see_every_registration() {
    use registry_shared::domain::Status;
    use registry_shared::registry::ListQuery;
    let Some(sdk) = stand_in().await else { return };
    let table = unique_name("rows");
    let writer = table_store(&sdk, &table).await;
    let reader = table_store(&sdk, &table).await;
    let live = ListQuery { statuses: vec![Status::Live], ..Default::default() };
    for (i, version) in ["1.0.0", "2.0.0", "3.0.0"].iter().enumerate() {
        let now = conformance::at(i as i64);
        writer
            .commit_registration(
                &[conformance::row("kafka", version, "stream", now)],
                now,
                &conformance::draft(),
                Versions::Immutable,
            )
            .await
            .unwrap();
        for query in [ListQuery::default(), live.clone(), ListQuery { limit: Some(1), ..live.clone() }] {
            let page = reader.list(&query).await.unwrap();
            let live_ids: Vec<&str> =
                page.rows.iter().filter(|r| r.status == Status::Live).map(|r| r.id.as_str()).collect();
            assert_eq!(live_ids, [format!("kafka-{version}")], "{query:?}");
        }
        assert_eq!(reader.list(&ListQuery::default()).await.unwrap().rows.len(), i + 1);
    }
}

/// A commit beyond `TransactWriteItems`' 100 actions or 4 MB is refused before it is sent, and
/// nothing of it lands. (Packages never get here: the write budget refuses them first.)
#[tokio::test]
async fn dynamodb_refuses_commits_over_the_transaction_limits_and_writes_nothing() {
    use registry_shared::adapters::aws::{MAX_TRANSACTION_ACTIONS, MAX_TRANSACTION_BYTES};
    use registry_shared::error::StoreError;
    use registry_shared::registry::ListQuery;
    use serde_json::value::RawValue;
    let Some(sdk) = stand_in().await else { return };
    let store = table_store(&sdk, &unique_name("rows")).await;
    let now = conformance::at(0);
    let many: Vec<_> = (0..40).map(|i| conformance::row(&format!("c{i:02}"), "1.0.0", "batch", now)).collect();
    let error = store.commit_registration(&many, now, &conformance::draft(), Versions::Immutable).await.unwrap_err();
    let StoreError::TooLarge(message) = error else { panic!("{error:?}") };
    assert!(message.contains(&MAX_TRANSACTION_ACTIONS.to_string()), "{message}");

    let big: Vec<_> = (0..12)
        .map(|i| {
            let mut row = conformance::row(&format!("big{i:02}"), "1.0.0", "batch", now);
            row.ui_spec = RawValue::from_string(format!(r#"{{"padding":"{}"}}"#, "x".repeat(350 * 1024))).unwrap();
            row
        })
        .collect();
    let error = store.commit_registration(&big, now, &conformance::draft(), Versions::Immutable).await.unwrap_err();
    let StoreError::TooLarge(message) = error else { panic!("{error:?}") };
    assert!(message.contains(&MAX_TRANSACTION_BYTES.to_string()), "{message}");
    assert!(store.list(&ListQuery::default()).await.unwrap().rows.is_empty(), "nothing was written");
}

/// A list reads about what it answers (list entries, not whole rows), and a repeated list on a
/// warm instance one small item. Measured by the documented stand-in's meter; straight on moto
/// there is nothing to measure, and the test says so.
#[tokio::test]
async fn dynamodb_lists_cost_about_what_they_answer() {
    use registry_shared::domain::Status;
    use registry_shared::registry::ListQuery;
    use registry_shared::test_support::aws::Meter;
    use serde_json::value::RawValue;
    let Some(sdk) = stand_in().await else { return };
    let table = unique_name("rows");
    let Some(meter) = Meter::for_table(&table) else {
        eprintln!("not behind the documented stand-in: list costs are measured in its pass of the test command");
        return;
    };
    let store = table_store(&sdk, &table).await;
    for i in 0..30 {
        let now = conformance::at(i);
        let mut row = conformance::row(&format!("c{:02}", i % 15), &format!("{}.0.0", i / 15), "batch", now);
        row.ui_spec = RawValue::from_string(format!(r#"{{"schema":"{}"}}"#, "x".repeat(8 * 1024))).unwrap();
        store.commit_registration(&[row], now, &conformance::draft(), Versions::Immutable).await.unwrap();
    }
    let cold = DynamoRowStore::new(&sdk, &table);
    for query in [ListQuery::default(), ListQuery { statuses: vec![Status::Live], ..Default::default() }] {
        let (page, cost) = meter.cost(cold.list(&query)).await;
        let answer: usize = page.unwrap().rows.iter().map(|r| r.view.get().len()).sum();
        let units_for_answer = answer as f64 / 4096.0;
        // Each query rounds up to 4 KB: a unit at most for each partition read, beyond the answer.
        let bound = 1.25 * units_for_answer + cost.calls as f64;
        assert!(cost.read_units <= bound, "{query:?}: {cost:?} for {answer} bytes");
        assert!(cost.read_bytes < 2 * answer as u64, "no ui_spec read: {cost:?} for {answer} bytes");
        let (_, warm) = meter.cost(cold.list(&query)).await;
        assert!(warm.read_units <= 2.0 && warm.calls == 1, "warm: {warm:?}");
    }
    // A page reads about the page, from every partition together; asked again, nothing.
    let paging = DynamoRowStore::new(&sdk, &table);
    let first = ListQuery { limit: Some(3), ..Default::default() };
    let (page, cost) = meter.cost(paging.list(&first)).await;
    assert_eq!(page.unwrap().rows.len(), 3);
    assert!(cost.read_bytes < 20 * 1024, "{cost:?}");
    let (again, warm) = meter.cost(paging.list(&first)).await;
    assert_eq!(again.unwrap().rows.len(), 3);
    assert!(warm.read_units <= 2.0 && warm.calls == 1, "warm page: {warm:?}");
    // After a registration the page is read again, and shows it.
    let now = conformance::at(100);
    store
        .commit_registration(
            &[conformance::row("a-first", "1.0.0", "batch", now)],
            now,
            &conformance::draft(),
            Versions::Immutable,
        )
        .await
        .unwrap();
    let page = paging.list(&first).await.unwrap();
    assert_eq!(page.rows[0].id.as_str(), "a-first-1.0.0");
}

/// The one-shot copy of a first-layout table into this layout's.
#[tokio::test]
async fn dynamodb_first_layout_tables_copy_into_the_new_layout() {
    use registry_shared::adapters::aws::Copied;
    use registry_shared::domain::Status;
    use registry_shared::registry::ListQuery;
    use registry_shared::test_support::aws::first_layout_table;
    let Some(sdk) = stand_in().await else { return };
    let old = unique_name("first-layout");
    let now = conformance::at(0);
    let mut retired = conformance::row("kafka", "1.0.0", "stream", now);
    retired.status = Status::Retired;
    let live = conformance::row("kafka", "2.0.0", "stream", now);
    let other = conformance::row("pg", "1.0.0", "batch", now);
    first_layout_table(&sdk, &old, &[retired.clone(), live.clone(), other]).await;
    let refused = DynamoRowStore::new(&sdk, &old).create_table_if_missing().await.unwrap_err();
    let refused = registry_shared::error::error_chain(&refused);
    assert!(refused.contains("migrate-table"), "a first-layout table is not used as it is: {refused}");

    let store = table_store(&sdk, &unique_name("rows")).await;
    assert_eq!(store.copy_from_first_layout(&old).await.unwrap(), Copied { rows: 3, heads: 2 });
    assert_eq!(store.get("kafka-1.0.0", Status::Retired).await.unwrap().unwrap(), retired);
    assert_eq!(store.get("kafka-2.0.0", Status::Live).await.unwrap().unwrap(), live);
    let listed: Vec<(String, Status)> = store
        .list(&ListQuery::default())
        .await
        .unwrap()
        .rows
        .iter()
        .map(|r| (r.id.as_str().to_owned(), r.status))
        .collect();
    assert_eq!(
        listed,
        [
            ("kafka-1.0.0".into(), Status::Retired),
            ("kafka-2.0.0".into(), Status::Live),
            ("pg-1.0.0".into(), Status::Live)
        ]
    );
    // Registration goes on from the copied heads: one Live version.
    let now = conformance::at(10);
    store
        .commit_registration(
            &[conformance::row("kafka", "3.0.0", "stream", now)],
            now,
            &conformance::draft(),
            Versions::Immutable,
        )
        .await
        .unwrap();
    assert_eq!(store.get("kafka-2.0.0", Status::Retired).await.unwrap().unwrap().updated_date, now);
    // A table in use is never copied into.
    assert!(store.copy_from_first_layout(&old).await.is_err());
}

/// The documented stand-in itself: an eventually consistent read right after a write misses it,
/// a consistent one sees it, and an index refuses consistent reads, as DynamoDB does.
#[tokio::test]
async fn the_documented_dynamodb_stand_in_lags_eventually_consistent_reads() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use registry_shared::test_support::aws::Meter;
    let Some(sdk) = stand_in().await else { return };
    let table = unique_name("rows");
    if Meter::for_table(&table).is_none() {
        eprintln!("not behind the documented stand-in: its lag is checked in its pass of the test command");
        return;
    }
    table_store(&sdk, &table).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let key = |k: &str| AttributeValue::S(k.to_owned());
    client.put_item().table_name(&table).item("pk", key("x")).item("sk", key("y")).send().await.unwrap();
    let get = |consistent| {
        client.get_item().table_name(&table).key("pk", key("x")).key("sk", key("y")).consistent_read(consistent)
    };
    assert!(get(false).send().await.unwrap().item.is_none(), "an eventually consistent read lags");
    assert!(get(true).send().await.unwrap().item.is_some(), "a consistent read does not");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(get(false).send().await.unwrap().item.is_some(), "and the lag passes");
    let refused = client
        .query()
        .table_name(&table)
        .index_name("any")
        .consistent_read(true)
        .key_condition_expression("pk = :x")
        .expression_attribute_values(":x", key("x"))
        .send()
        .await;
    assert!(refused.is_err());
}

/// A commit whose answer never arrives (an attempt that timed out, an answer broken on the way)
/// and that the SDK sends again lands once: the second send finds the registration's own audit
/// event already in the outbox, and the registration is answered as committed instead of losing
/// to itself until it gives up. Both a first version and one that retires another.
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_committed_once() {
    use registry_shared::domain::Status;
    use registry_shared::registry::{AuditOutbox, ListQuery};
    let Some(sdk) = stand_in().await else { return };
    let lose = lost_answers::LoseAnswers::of("TransactWriteItems");
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(lose.clone()).build();
    let store = DynamoRowStore::with_client(aws_sdk_dynamodb::Client::from_conf(config), unique_name("rows"));
    store.create_table_if_missing().await.unwrap();
    for (i, version) in ["1.0.0", "2.0.0"].into_iter().enumerate() {
        let now = conformance::at(i as i64);
        lose.lose_next();
        store
            .commit_registration(
                &[conformance::row("kafka", version, "stream", now)],
                now,
                &conformance::draft(),
                Versions::Immutable,
            )
            .await
            .expect("committed, though its first answer was lost");
        assert_eq!(lose.lost(), i + 1, "the answer of version {version}'s commit was lost");
    }
    assert!(store.get("kafka-2.0.0", Status::Live).await.unwrap().is_some());
    assert!(store.get("kafka-1.0.0", Status::Retired).await.unwrap().is_some());
    assert_eq!(store.list(&ListQuery::default()).await.unwrap().rows.len(), 2);
    assert_eq!(store.pending(10).await.unwrap().len(), 2, "one audit event per registration");
}

mod lost_answers {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::config_bag::ConfigBag;

    /// Turns the next answer to `operation`, after the service has done it, into a 500 the SDK
    /// retries: what a timed-out attempt or a dropped connection looks like to the caller.
    #[derive(Debug, Clone)]
    pub struct LoseAnswers {
        operation: &'static str,
        armed: Arc<AtomicBool>,
        lost: Arc<AtomicUsize>,
    }

    impl LoseAnswers {
        pub fn of(operation: &'static str) -> Self {
            Self { operation, armed: Arc::default(), lost: Arc::default() }
        }

        pub fn lose_next(&self) {
            self.armed.store(true, Ordering::SeqCst);
        }

        pub fn lost(&self) -> usize {
            self.lost.load(Ordering::SeqCst)
        }
    }

    impl Intercept for LoseAnswers {
        fn name(&self) -> &'static str {
            "LoseAnswers"
        }

        fn modify_before_deserialization(
            &self,
            context: &mut BeforeDeserializationInterceptorContextMut<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let this_operation = cfg.load::<Metadata>().is_some_and(|m| m.name() == self.operation);
            if this_operation && context.response().status().is_success() && self.armed.swap(false, Ordering::SeqCst) {
                let response = context.response_mut();
                *response.status_mut() = StatusCode::try_from(500_u16)?;
                response.headers_mut().remove("x-amz-crc32");
                *response.body_mut() = SdkBody::from(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost on the way"}"#,
                );
                self.lost.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }
    }
}
