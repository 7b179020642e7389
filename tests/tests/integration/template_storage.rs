//! The store conformance suite on a table and a bucket made from the deployed template's own
//! definitions: `RegistryTable` and `ArchiveBucket` as SAM transforms them and the default
//! parameters render them (`scripts/sam/storage-definitions`, which the test command runs into the
//! file `REGISTRY_TEMPLATE_STORAGE` names), created on the S3/DynamoDB stand-in property by
//! property. A property this file does not know fails the test, so that a new one is either
//! created here or said to be out of the stand-in's reach.

use std::sync::Arc;

use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::registry::{ArchiveStore, RowStore, StoredName};
use registry_shared::test_support::aws::{stand_in, unique_name};
use registry_shared::test_support::conformance;
use serde_json::Value;

/// The definitions the test command wrote; `None` where the AWS tests are skipped.
fn definitions() -> Option<Value> {
    let Some(path) = std::env::var_os("REGISTRY_TEMPLATE_STORAGE") else {
        if std::env::var("REGISTRY_SKIP_AWS_TESTS").as_deref() == Ok("1") {
            return None;
        }
        panic!(
            "REGISTRY_TEMPLATE_STORAGE is not set: run the tests with scripts/test, which writes the template's \
             storage definitions (scripts/sam/storage-definitions)"
        );
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    Some(serde_json::from_str(&text).expect("the storage definitions are JSON"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("a string, not {value}"))
}

fn number(value: &Value) -> i32 {
    value.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or_else(|| panic!("a number, not {value}"))
}

fn entries(value: &Value) -> &serde_json::Map<String, Value> {
    value.as_object().unwrap_or_else(|| panic!("an object, not {value}"))
}

/// A table named `name`, made as `properties` (RegistryTable's) say.
async fn create_table(client: &aws_sdk_dynamodb::Client, properties: &Value, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
        ScalarAttributeType, SseSpecification, SseType, StreamSpecification, StreamViewType,
    };
    let mut create = client.create_table().table_name(name);
    let mut recovery = None;
    for (property, value) in entries(properties) {
        create = match property.as_str() {
            "BillingMode" => create.billing_mode(BillingMode::from(text(value))),
            "AttributeDefinitions" => value.as_array().unwrap().iter().fold(create, |create, a| {
                create.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(text(&a["AttributeName"]))
                        .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"])))
                        .build()
                        .unwrap(),
                )
            }),
            "KeySchema" => value.as_array().unwrap().iter().fold(create, |create, k| {
                create.key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(text(&k["AttributeName"]))
                        .key_type(KeyType::from(text(&k["KeyType"])))
                        .build()
                        .unwrap(),
                )
            }),
            "StreamSpecification" => create.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(text(&value["StreamViewType"])))
                    .build()
                    .unwrap(),
            ),
            "SSESpecification" => create.sse_specification(
                SseSpecification::builder()
                    .enabled(value["SSEEnabled"].as_bool().unwrap())
                    .set_sse_type(value.get("SSEType").map(|t| SseType::from(text(t))))
                    .set_kms_master_key_id(value.get("KMSMasterKeyId").map(|k| text(k).to_owned()))
                    .build(),
            ),
            // Turned on once the table exists, as CloudFormation does.
            "PointInTimeRecoverySpecification" => {
                recovery = value["PointInTimeRecoveryEnabled"].as_bool();
                create
            }
            other => panic!("RegistryTable.{other}: create it here, or say why the stand-in cannot"),
        };
    }
    create.send().await.expect("the template's table is created");
    // The production path from here: it checks the keys and waits until the table is active.
    let store = DynamoRowStore::with_client(client.clone(), name);
    store.create_table_if_missing().await.expect("the template's table is the code's");
    if let Some(enabled) = recovery {
        let specification =
            PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(enabled).build().unwrap();
        let update = client.update_continuous_backups().table_name(name);
        update.point_in_time_recovery_specification(specification).send().await.expect("point-in-time recovery");
    }
}

/// A bucket named `name`, made as `properties` (ArchiveBucket's) say.
async fn create_bucket(client: &aws_sdk_s3::Client, properties: &Value, name: &str) {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus,
        LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectOwnership,
        OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
        ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
        VersioningConfiguration,
    };
    client.create_bucket().bucket(name).send().await.expect("the bucket is created");
    for (property, value) in entries(properties) {
        match property.as_str() {
            // The stack's own name; the test's bucket has one of its own.
            "BucketName" => {}
            // It names the register-upload function's alias, which the stand-in has not; the
            // S3 events' handling is tested with the Lambda event fixtures.
            "NotificationConfiguration" => {}
            "VersioningConfiguration" => {
                let status = BucketVersioningStatus::from(text(&value["Status"]));
                let versioning = VersioningConfiguration::builder().status(status).build();
                client.put_bucket_versioning().bucket(name).versioning_configuration(versioning).send().await.unwrap();
            }
            "BucketEncryption" => {
                let mut configuration = ServerSideEncryptionConfiguration::builder();
                for rule in value["ServerSideEncryptionConfiguration"].as_array().unwrap() {
                    let by_default = &rule["ServerSideEncryptionByDefault"];
                    let by_default = ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::from(text(&by_default["SSEAlgorithm"])))
                        .set_kms_master_key_id(by_default.get("KMSMasterKeyID").map(|k| text(k).to_owned()))
                        .build()
                        .unwrap();
                    configuration = configuration.rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(by_default)
                            .set_bucket_key_enabled(rule.get("BucketKeyEnabled").and_then(Value::as_bool))
                            .build(),
                    );
                }
                let put = client.put_bucket_encryption().bucket(name);
                put.server_side_encryption_configuration(configuration.build().unwrap()).send().await.unwrap();
            }
            "PublicAccessBlockConfiguration" => {
                let setting = |name: &str| value[name].as_bool();
                let block = PublicAccessBlockConfiguration::builder()
                    .set_block_public_acls(setting("BlockPublicAcls"))
                    .set_block_public_policy(setting("BlockPublicPolicy"))
                    .set_ignore_public_acls(setting("IgnorePublicAcls"))
                    .set_restrict_public_buckets(setting("RestrictPublicBuckets"))
                    .build();
                client
                    .put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(block)
                    .send()
                    .await
                    .unwrap();
            }
            "OwnershipControls" => {
                let mut controls = OwnershipControls::builder();
                for rule in value["Rules"].as_array().unwrap() {
                    let ownership = ObjectOwnership::from(text(&rule["ObjectOwnership"]));
                    controls =
                        controls.rules(OwnershipControlsRule::builder().object_ownership(ownership).build().unwrap());
                }
                let put = client.put_bucket_ownership_controls().bucket(name);
                put.ownership_controls(controls.build().unwrap()).send().await.unwrap();
            }
            "LifecycleConfiguration" => {
                let mut lifecycle = BucketLifecycleConfiguration::builder();
                for rule in value["Rules"].as_array().unwrap() {
                    let mut built = LifecycleRule::builder().filter(LifecycleRuleFilter::builder().prefix("").build());
                    let mut expiration = LifecycleExpiration::builder();
                    let mut expires = false;
                    for (field, setting) in entries(rule) {
                        built = match field.as_str() {
                            "Id" => built.id(text(setting)),
                            "Status" => built.status(ExpirationStatus::from(text(setting))),
                            "Prefix" => built.filter(LifecycleRuleFilter::builder().prefix(text(setting)).build()),
                            "ExpirationInDays" => {
                                expiration = expiration.days(number(setting));
                                expires = true;
                                built
                            }
                            "ExpiredObjectDeleteMarker" => {
                                expiration = expiration.expired_object_delete_marker(setting.as_bool().unwrap());
                                expires = true;
                                built
                            }
                            "NoncurrentVersionExpiration" => built.noncurrent_version_expiration(
                                NoncurrentVersionExpiration::builder()
                                    .noncurrent_days(number(&setting["NoncurrentDays"]))
                                    .build(),
                            ),
                            "AbortIncompleteMultipartUpload" => built.abort_incomplete_multipart_upload(
                                AbortIncompleteMultipartUpload::builder()
                                    .days_after_initiation(number(&setting["DaysAfterInitiation"]))
                                    .build(),
                            ),
                            other => panic!("ArchiveBucket lifecycle rule field {other}: create it here"),
                        };
                    }
                    if expires {
                        built = built.expiration(expiration.build());
                    }
                    lifecycle = lifecycle.rules(built.build().unwrap());
                }
                let put = client.put_bucket_lifecycle_configuration().bucket(name);
                put.lifecycle_configuration(lifecycle.build().unwrap()).send().await.unwrap();
            }
            other => panic!("ArchiveBucket.{other}: create it here, or say why the stand-in cannot"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_store_conforms_on_the_template_s_table() {
    let Some(definitions) = definitions() else { return };
    let Some(sdk) = stand_in().await else { return };
    let table = &definitions["RegistryTable"];
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    conformance::row_store_suite(|| {
        let client = client.clone();
        async move {
            let name = unique_name("template-rows");
            create_table(&client, table, &name).await;
            Arc::new(DynamoRowStore::with_client(client, name)) as Arc<dyn RowStore>
        }
    })
    .await;
    conformance::outbox_suite(|| {
        let client = client.clone();
        async move {
            let name = unique_name("template-outbox");
            create_table(&client, table, &name).await;
            Arc::new(DynamoRowStore::with_client(client, name))
        }
    })
    .await;
}

#[tokio::test]
async fn the_archive_store_conforms_on_the_template_s_bucket_and_a_deleted_archive_comes_back() {
    use std::io::{Read, Seek};
    let Some(definitions) = definitions() else { return };
    let Some(sdk) = stand_in().await else { return };
    let bucket = unique_name("template-archives");
    // Path-style, as the store addresses the stand-in.
    let client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    create_bucket(&client, &definitions["ArchiveBucket"], &bucket).await;
    let store = S3ArchiveStore::new(&sdk, &bucket, "").unwrap();
    store.create_bucket_if_missing().await.expect("the template's bucket is used as it is");
    conformance::archive_store_suite(&store).await;
    conformance::large_archive_case(&store, 40 * 1024 * 1024).await;

    // What docs/operations.md says to do for a deleted archive: copy its last version back.
    let staged = tempfile::NamedTempFile::new_in(store.staging_dir()).unwrap();
    std::fs::write(staged.path(), b"the archive").unwrap();
    let key = StoredName::generate("kafka-connector.tar.gz").key();
    store.put(&key, staged.path()).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap(), "a delete hides the archive");
    let listed = client.list_object_versions().bucket(&bucket).prefix(key.as_str()).send().await.unwrap();
    assert!(listed.delete_markers().iter().any(|m| m.is_latest() == Some(true)), "behind a delete marker");
    let versions = listed.versions();
    assert_eq!(versions.len(), 1, "the archive's version is kept");
    let version = versions[0].version_id().expect("a version id");
    let source = format!("{bucket}/{}?versionId={version}", key.as_str());
    client.copy_object().bucket(&bucket).key(key.as_str()).copy_source(source).send().await.unwrap();
    let mut restored = Vec::new();
    let mut file = store.open(&key).await.unwrap().expect("the archive is back");
    file.rewind().unwrap();
    file.read_to_end(&mut restored).unwrap();
    assert_eq!(restored, b"the archive");
}

/// What docs/operations.md says to do after a point-in-time restore: the restored table's items
/// copied into the stack's table (`scripts/ops/restore-table`), which then reads, lists and
/// takes rows as it did at that time, on instances that had listed it since too.
#[tokio::test]
async fn the_stack_s_table_goes_back_to_a_point_in_time_restored_table() {
    use registry_shared::domain::Status;
    use registry_shared::registry::{Imported, ListQuery};
    let Some(definitions) = definitions() else { return };
    let Some(sdk) = stand_in().await else { return };
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let stack = unique_name("template-stack");
    create_table(&client, &definitions["RegistryTable"], &stack).await;
    let store = DynamoRowStore::with_client(client.clone(), &stack);
    let kafka = conformance::row("kafka", "1.0.0", "stream", conformance::at(0));
    assert_eq!(store.import_row(&kafka).await.unwrap(), Imported::Written);

    // The point in time (the stand-in restores the table as it is when asked).
    let restored = unique_name("template-restored");
    let restore = client.restore_table_to_point_in_time().source_table_name(&stack).target_table_name(&restored);
    restore.use_latest_restorable_time(true).send().await.expect("restored");
    DynamoRowStore::with_client(client.clone(), &restored).create_table_if_missing().await.expect("active");

    // What the restore undoes, listed by an instance that keeps its lists.
    let pg = conformance::row("pg", "1.0.0", "batch", conformance::at(1));
    assert_eq!(store.import_row(&pg).await.unwrap(), Imported::Written);
    assert_eq!(store.list(&ListQuery::default()).await.unwrap().rows.len(), 2);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ops/restore-table");
    let copied = std::process::Command::new(script).args(["--from", &restored, "--to", &stack]).output().unwrap();
    assert!(copied.status.success(), "{}", String::from_utf8_lossy(&copied.stderr));

    for instance in [store, DynamoRowStore::with_client(client.clone(), &stack)] {
        let listed: Vec<String> =
            instance.list(&ListQuery::default()).await.unwrap().rows.iter().map(|r| r.id.as_str().to_owned()).collect();
        assert_eq!(listed, ["kafka-1.0.0"]);
        assert_eq!(instance.get("kafka-1.0.0", Status::Live).await.unwrap(), Some(kafka.clone()));
        assert!(instance.get("pg-1.0.0", Status::Live).await.unwrap().is_none());
    }
    // The heads are the restored ones: pg takes a first Live version again, kafka keeps its one.
    let again = DynamoRowStore::with_client(client, &stack);
    assert_eq!(again.import_row(&pg).await.unwrap(), Imported::Written);
    let second = conformance::row("kafka", "1.1.0", "stream", conformance::at(2));
    assert!(matches!(again.import_row(&second).await.unwrap(), Imported::Refused(_)), "one Live version");
}
