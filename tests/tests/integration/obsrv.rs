//! The registry as the source of truth of an Obsrv installation: a server started with
//! `--obsrv-postgres` keeps Obsrv's `connector_registry` table in step, column for column, and
//! Obsrv's own consumers (the command-service's deploy queries, the connector runtimes' fetch
//! query, the SDKs' joins) find what they need in it. Against a real PostgreSQL, on both backends.

use std::collections::BTreeMap;
use std::time::Duration;

use registry_server::Backend;
use registry_shared::adapters::postgres::PostgresObsrvTable;
use registry_shared::registry::obsrv::{Obsrv, ObsrvRow, ObsrvTable, Removal, Replace, sync};
use registry_shared::test_support::{ICON_SVG, single_tenant_metadata};
use registry_tests::obsrv::ObsrvDatabase;
use registry_tests::*;

use super::api::READ_FIELDS;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long the mirror may take to bring the table up to date in these tests.
const CAUGHT_UP: Duration = Duration::from_secs(30);

on_both_backends!(
    registered_packages_are_in_obsrv_s_table_column_for_column,
    a_new_version_retires_the_old_one_in_obsrv_s_table_too,
    obsrv_s_consumers_find_what_they_need,
    a_registration_made_while_postgresql_is_down_arrives_once_it_is_up,
    concurrent_registrations_leave_one_live_row_in_obsrv_s_table,
    sync_repairs_the_table_and_keeps_what_instances_reference,
    an_obsrv_installation_s_registrations_are_imported_as_they_are,
    archives_reach_obsrv_s_container_before_their_rows,
    registrations_say_what_obsrv_s_runtimes_cannot_do,
    transitions_reach_obsrv_s_table_and_a_version_in_use_is_never_deleted,
);

async fn transitions_reach_obsrv_s_table_and_a_version_in_use_is_never_deleted(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = mirrored_app(kind, &database).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "2.0.0")).await;
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Retired"), ("kafka-connector-2.0.0", "Live")]).await;

    let rollback = app.transition("kafka-connector-1.0.0", "Live", Some("2.0.0 drops events")).await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text);
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Live"), ("kafka-connector-2.0.0", "Retired")]).await;

    // A dataset's connector instance uses 2.0.0, as Obsrv's command-service writes it.
    let client = database.client().await;
    client
        .batch_execute(
            "INSERT INTO datasets (id, type, status, updated_date) VALUES ('orders', 'event', 'Live', now());
             INSERT INTO connector_instances (id, dataset_id, connector_id, connector_config, operations_config, status, \
               created_by, updated_by, created_date, updated_date, published_date) VALUES ('orders_kafka', 'orders', \
               'kafka-connector-2.0.0', '{}', '{}', 'Live', 'SYSTEM', 'SYSTEM', now(), now(), now());",
        )
        .await
        .unwrap();
    let refused = app.transition("kafka-connector-2.0.0", "Delete", None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "CONNECTOR_IN_USE");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("orders_kafka"), "{}", refused.text);
    assert_eq!(app.all_rows().await.len(), 2, "nothing was deleted");

    client.batch_execute("DELETE FROM connector_instances WHERE id = 'orders_kafka'").await.unwrap();
    let deleted = app.transition("kafka-connector-2.0.0", "Delete", None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Live")]).await;
}

async fn mirrored_app(kind: BackendKind, database: &ObsrvDatabase) -> TestApp {
    let url = database.url.clone();
    TestApp::spawn_with(kind, move |config| config.obsrv_postgres = Some(url)).await
}

/// A single-tenant Spark connector in Python, as Obsrv's own Spark connectors are packaged.
fn spark_python(id: &str, version: &str) -> Package {
    let mut metadata = single_tenant_metadata(id, version);
    metadata["metadata"]["runtime"] = json!("spark");
    metadata["metadata"]["technology"] = json!("python");
    metadata["metadata"]["category"] = json!("batch");
    metadata["metadata"]["main_class"] = Value::Null;
    metadata["metadata"]["main_program"] = json!("main.py");
    let top = format!("{id}-{version}");
    Package::default()
        .folder(&top)
        .json(&format!("{top}/metadata.json"), &metadata)
        .json(&format!("{top}/ui-config.json"), &test_support::ui_config())
        .file(&format!("{top}/icon.svg"), ICON_SVG)
        .file(&format!("{top}/main.py"), b"print('spark')")
        .file(&format!("{top}/requirements.txt"), b"pyspark\n")
}

/// The table's rows by id, every column as JSON (timestamps as read answers them).
async fn table_rows(database: &ObsrvDatabase) -> BTreeMap<String, Value> {
    let client = database.client().await;
    let rows = client
        .query(
            "SELECT id, connector_id, name, type, category, version, description, technology, runtime, licence, \
             owner, iconurl, status, ui_spec, source_url, source, created_by, updated_by, created_date, \
             updated_date, live_date FROM connector_registry",
            &[],
        )
        .await
        .unwrap();
    let time = |value: Option<chrono::NaiveDateTime>| match value {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        None => Value::Null,
    };
    rows.iter()
        .map(|row| {
            let id: String = row.get(0);
            let text = |i: usize| -> Value { row.get::<_, Option<String>>(i).map(Value::from).unwrap_or(Value::Null) };
            let value = json!({
                "id": text(0), "connector_id": text(1), "name": text(2), "type": text(3), "category": text(4),
                "version": text(5), "description": text(6), "technology": text(7), "runtime": text(8),
                "licence": text(9), "owner": text(10), "iconurl": text(11), "status": text(12),
                "ui_spec": row.get::<_, Value>(13), "source_url": text(14), "source": row.get::<_, Value>(15),
                "created_by": text(16), "updated_by": text(17), "created_date": time(row.get(18)),
                "updated_date": time(row.get(19)), "live_date": time(row.get(20)),
            });
            (id, value)
        })
        .collect()
}

/// Waits until the table holds `ids` with these statuses (and no other row of theirs).
async fn wait_for_statuses(database: &ObsrvDatabase, expected: &[(&str, &str)]) {
    database
        .wait_until("SELECT id, status FROM connector_registry ORDER BY id", CAUGHT_UP, |rows| {
            let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let wanted: Vec<(String, String)> =
                expected.iter().map(|(id, status)| ((*id).to_owned(), (*status).to_owned())).collect();
            if found == wanted { Ok(()) } else { Err(format!("{found:?}, not {wanted:?}")) }
        })
        .await
}

async fn registered(app: &TestApp, name: &str, package: &Package) {
    let answer = app.register(name, package.tar_gz()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn registered_packages_are_in_obsrv_s_table_column_for_column(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = mirrored_app(kind, &database).await;
    registered(&app, "kafka-connector.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(
        &app,
        "object-store.tar.gz",
        &Package::multi_tenant("object-store", "0.1.0", &["s3-connector", "gcs-connector"]),
    )
    .await;
    registered(&app, "jdbc.tar.gz", &spark_python("jdbc-connector", "2.1.0")).await;
    wait_for_statuses(
        &database,
        &[
            ("gcs-connector-0.1.0", "Live"),
            ("jdbc-connector-2.1.0", "Live"),
            ("kafka-connector-1.0.0", "Live"),
            ("s3-connector-0.1.0", "Live"),
        ],
    )
    .await;

    let table = table_rows(&database).await;
    let archives: Vec<String> = app.stored_archives().await.into_iter().map(|(name, _)| name).collect();
    for (id, row) in &table {
        // Every column read answers with is the table's, value for value.
        let read = app.read(id).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        let answered = &read.body["result"];
        for column in READ_FIELDS {
            assert_eq!(row[column], answered[column], "{id}: {column}");
        }
        // And list's technology and runtime.
        let listed = app.list(json!({"filters": {}})).await;
        let entry = listed.body["result"]["data"].as_array().unwrap().iter().find(|r| r["id"] == *id).unwrap().clone();
        assert_eq!((&row["technology"], &row["runtime"]), (&entry["technology"], &entry["runtime"]), "{id}");
        assert_eq!(row["type"], "source");
        assert!(
            archives.contains(&row["source_url"].as_str().unwrap().to_owned()),
            "{id}: source_url names the archive"
        );
        assert!(row["source"].is_object(), "{id}: source is a JSON object, as Obsrv's runtimes read it");
    }
    assert_eq!(
        table["kafka-connector-1.0.0"]["source"],
        json!({"source": "kafka-connector-1.0.0", "main_class": "org.example.Main", "main_program": "kafka-connector-1.0.0.jar"})
    );
    assert_eq!(table["kafka-connector-1.0.0"]["runtime"], "flink");
    assert_eq!(table["kafka-connector-1.0.0"]["technology"], "scala");
    // A multi-tenant package's rows name the package's folder, and each has its own form.
    assert_eq!(
        table["s3-connector-0.1.0"]["source"],
        json!({"source": "object-store-0.1.0", "main_class": null, "main_program": "main.py"})
    );
    assert_eq!(table["s3-connector-0.1.0"]["ui_spec"], test_support::ui_config());
    assert_eq!(table["jdbc-connector-2.1.0"]["runtime"], "spark");
    assert_eq!(table["jdbc-connector-2.1.0"]["created_by"], "SYSTEM");
}

async fn a_new_version_retires_the_old_one_in_obsrv_s_table_too(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = mirrored_app(kind, &database).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Live")]).await;
    let first = table_rows(&database).await["kafka-connector-1.0.0"].clone();
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "2.0.0")).await;
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Retired"), ("kafka-connector-2.0.0", "Live")]).await;
    let rows = table_rows(&database).await;
    let retired = &rows["kafka-connector-1.0.0"];
    assert_eq!(retired["created_date"], first["created_date"]);
    assert_ne!(retired["updated_date"], first["updated_date"], "the retirement is an update");
    let read = app.read("kafka-connector-2.0.0").await;
    assert_eq!(rows["kafka-connector-2.0.0"]["updated_date"], read.body["result"]["updated_date"]);
}

/// A dataset that uses a mirrored connector, as publishing it inserts it (Obsrv's
/// command-service, db_command.py), then the queries that deploy and run it.
async fn obsrv_s_consumers_find_what_they_need(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = mirrored_app(kind, &database).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(&app, "jdbc.tar.gz", &spark_python("jdbc-connector", "2.1.0")).await;
    wait_for_statuses(&database, &[("jdbc-connector-2.1.0", "Live"), ("kafka-connector-1.0.0", "Live")]).await;
    let client = database.client().await;
    client
        .batch_execute(
            "INSERT INTO datasets (id, dataset_id, type, name, router_config, dataset_config, status, updated_date) \
             VALUES ('orders', 'orders', 'event', 'orders', '{\"topic\": \"orders\"}', '{}', 'Live', now())",
        )
        .await
        .unwrap();
    for (instance, connector) in [("orders_kafka", "kafka-connector-1.0.0"), ("orders_jdbc", "jdbc-connector-2.1.0")] {
        // The publish step's insert: the foreign key holds because the row is mirrored.
        client
            .execute(
                "INSERT INTO connector_instances(id, dataset_id, connector_id, connector_config, operations_config, \
                 status, connector_state, connector_stats, created_by, updated_by, created_date, updated_date, \
                 published_date) VALUES ($1, 'orders', $2, '{}', '{\"schedule\": \"hourly\"}', 'Live', '{}', '{}', \
                 'SYSTEM', 'SYSTEM', now(), now(), now())",
                &[&instance, &connector],
            )
            .await
            .unwrap();
    }

    // Deploying (connector_command.py): runtime, source, technology and version by instance.
    let deployed = client
        .query(
            "SELECT ci.id, ci.connector_id, ci.dataset_id, ci.operations_config, cr.runtime as connector_runtime, \
             cr.source as connector_source, cr.technology, cr.version FROM connector_instances ci \
             JOIN connector_registry cr on ci.connector_id = cr.id WHERE ci.status= $1 and ci.dataset_id = $2 ORDER BY ci.id",
            &[&"Live", &"orders"],
        )
        .await
        .unwrap();
    assert_eq!(deployed.len(), 2);
    let spark = &deployed[0];
    assert_eq!(spark.get::<_, String>("connector_runtime"), "spark");
    let source: Value = spark.get("connector_source");
    assert_eq!((&source["source"], &source["main_program"]), (&json!("jdbc-connector-2.1.0"), &json!("main.py")));
    assert!(source.get("main_class").is_some(), "Spark's deploy reads main_class");
    let flink = &deployed[1];
    let source: Value = flink.get("connector_source");
    assert_eq!(source["main_program"], "kafka-connector-1.0.0.jar");
    assert_eq!(flink.get::<_, String>("version"), "1.0.0");
    let counted = client
        .query(
            "SELECT cr.id, COUNT(ci.id) AS instance_count FROM connector_registry cr LEFT JOIN connector_instances ci \
             ON (cr.id = ci.connector_id AND ci.status = $1) WHERE cr.runtime = $2 GROUP BY cr.id",
            &[&"Live", &"flink"],
        )
        .await
        .unwrap();
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].get::<_, i64>("instance_count"), 1);

    // The Flink runtime's fetch (connector.py): source_url and source of the Live rows, then
    // url-access with the request alone, then the archive itself.
    let fetched = client
        .query(
            "SELECT cr.source_url, cr.source FROM connector_registry cr LEFT JOIN connector_instances ci on \
             ci.connector_id = cr.id WHERE (cr.status = 'Live' or ci.status = 'Live') AND cr.runtime = 'flink' \
             AND cr.id = 'kafka-connector-1.0.0' ",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(fetched.len(), 1);
    let source_url: String = fetched[0].get(0);
    let source: Value = fetched[0].get(1);
    assert_eq!(source["source"], "kafka-connector-1.0.0", "the folder the runtime expects its metadata.json in");
    let body = json!({"request": {"files": [source_url], "access": "read", "type": "connector"}});
    let url_access = app.post_json("/v2/files/url-access", body).await;
    assert_eq!(url_access.status, StatusCode::OK, "{}", url_access.text);
    let url = url_access.body["result"][0]["preSignedUrl"].as_str().unwrap().to_owned();
    let archive = app.client.get(&url).send().await.unwrap();
    assert_eq!(archive.status(), StatusCode::OK);
    let stored = app.stored_archives().await.into_iter().find(|(name, _)| *name == source_url).unwrap().1;
    assert_eq!(archive.bytes().await.unwrap().as_ref(), stored.as_slice());

    // The SDKs' joins (connector-sdk-scala, obsrv-python-sdk): type, and the Live status.
    let sdk = client
        .query(
            "SELECT ci.*, d.entry_topic, d.router_config, cr.type as connector_type FROM connector_instances as ci \
             JOIN connector_registry cr ON ci.connector_id = cr.id JOIN datasets d ON ci.dataset_id = d.id \
             WHERE ci.connector_id = 'kafka-connector-1.0.0' AND d.status = 'Live' AND cr.status='Live' AND ci.status = 'Live'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(sdk.len(), 1);
    assert_eq!(sdk[0].get::<_, String>("connector_type"), "source");

    // A new version retires the referenced one: its row stays (instances point at it), Retired.
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.1.0")).await;
    wait_for_statuses(
        &database,
        &[("jdbc-connector-2.1.0", "Live"), ("kafka-connector-1.0.0", "Retired"), ("kafka-connector-1.1.0", "Live")],
    )
    .await;
}

async fn a_registration_made_while_postgresql_is_down_arrives_once_it_is_up(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::reserved() else { return };
    let app = mirrored_app(kind, &database).await;
    // The registry's own commit is the answer: PostgreSQL is not asked.
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    database.create().await;
    wait_for_statuses(&database, &[("kafka-connector-1.0.0", "Live")]).await;
}

async fn concurrent_registrations_leave_one_live_row_in_obsrv_s_table(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = mirrored_app(kind, &database).await;
    let versions = ["1.0.0", "1.0.1", "1.0.2", "1.0.3"];
    let registrations = versions.iter().map(|version| {
        let package = Package::single_tenant("kafka-connector", version).tar_gz();
        app.register("kafka.tar.gz", package)
    });
    for answer in futures_util::future::join_all(registrations).await {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let live = app.list(json!({"filters": {"status": ["Live"]}})).await;
    let live_id = live.body["result"]["data"][0]["id"].as_str().unwrap().to_owned();
    let mut expected: Vec<(String, &str)> = versions
        .iter()
        .map(|v| {
            let id = format!("kafka-connector-{v}");
            let status = if id == live_id { "Live" } else { "Retired" };
            (id, status)
        })
        .collect();
    expected.sort();
    let expected: Vec<(&str, &str)> = expected.iter().map(|(id, status)| (id.as_str(), *status)).collect();
    wait_for_statuses(&database, &expected).await;
}

/// `sync-obsrv`'s comparison and repair (with no mirror running beside it, so that only the
/// repair changes the table).
async fn sync_repairs_the_table_and_keeps_what_instances_reference(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = TestApp::spawn(kind).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(&app, "mqtt.tar.gz", &Package::single_tenant("mqtt-connector", "1.0.0")).await;
    let table = PostgresObsrvTable::new(&database.url).unwrap();
    let rows = app.rows();
    let first = sync(&*rows, &table, false).await.unwrap();
    assert_eq!(first.missing, ["kafka-connector-1.0.0", "mqtt-connector-1.0.0"], "an empty table is filled");
    assert!(sync(&*rows, &table, true).await.unwrap().is_in_sync());

    // Someone edits the table behind the registry's back.
    let client = database.client().await;
    client
        .batch_execute(
            "UPDATE connector_registry SET status = 'Retired', name = 'renamed' WHERE id = 'kafka-connector-1.0.0';
             DELETE FROM connector_registry WHERE id = 'mqtt-connector-1.0.0';
             INSERT INTO connector_registry SELECT 'stale-1.0', 'stale', name, type, category, '1.0', description, \
               technology, runtime, licence, owner, iconurl, status, ui_spec, source_url, source, created_by, \
               updated_by, created_date, updated_date, live_date FROM connector_registry WHERE id = 'kafka-connector-1.0.0';
             INSERT INTO connector_registry SELECT 'used-1.0', 'used', name, type, category, '1.0', description, \
               technology, runtime, licence, owner, iconurl, status, ui_spec, source_url, source, created_by, \
               updated_by, created_date, updated_date, live_date FROM connector_registry WHERE id = 'kafka-connector-1.0.0';
             INSERT INTO datasets (id, type, status, updated_date) VALUES ('orders', 'event', 'Live', now());
             INSERT INTO connector_instances (id, dataset_id, connector_id, connector_config, operations_config, status, \
               created_by, updated_by, created_date, updated_date, published_date) VALUES ('orders_used', 'orders', \
               'used-1.0', '{}', '{}', 'Live', 'SYSTEM', 'SYSTEM', now(), now(), now());",
        )
        .await
        .unwrap();

    let report = sync(&*rows, &table, true).await.unwrap();
    assert_eq!(report.missing, ["mqtt-connector-1.0.0"]);
    assert_eq!(report.differing, [("kafka-connector-1.0.0".to_owned(), vec!["name", "status"])]);
    assert_eq!(report.extra.len(), 2);
    assert_eq!(table_rows(&database).await.len(), 3, "a dry run changes nothing");

    let report = sync(&*rows, &table, false).await.unwrap();
    let extra: BTreeMap<String, Removal> = report.extra.into_iter().collect();
    assert_eq!(extra["stale-1.0"], Removal::Removed);
    assert_eq!(extra["used-1.0"], Removal::Referenced, "a row a connector instance references is never deleted");
    let after = table_rows(&database).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["kafka-connector-1.0.0", "mqtt-connector-1.0.0", "used-1.0"]);
    assert_eq!(after["kafka-connector-1.0.0"]["status"], "Live");
    assert_eq!(after["kafka-connector-1.0.0"]["name"], "kafka-connector name");
    let again = sync(&*rows, &table, true).await.unwrap();
    assert!(again.missing.is_empty() && again.differing.is_empty(), "{again:?}");
}

/// Deliveries late, out of order and repeated: an older state never replaces a newer one.
#[tokio::test]
async fn an_older_state_never_replaces_a_newer_one() {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let table = PostgresObsrvTable::new(&database.url).unwrap();
    let now = registry_shared::domain::Timestamp::parse("2026-11-28T13:00:00.250Z").unwrap();
    let later = registry_shared::domain::Timestamp::parse("2026-11-28T13:05:00.000Z").unwrap();
    let live = ObsrvRow::of(&test_support::conformance::row("kafka-connector", "1.0.0", "stream", now)).unwrap();
    let mut retired = live.clone();
    retired.status = "Retired".into();
    retired.updated_date = later.as_datetime().naive_utc();

    table.upsert(std::slice::from_ref(&retired), Replace::NotNewer).await.unwrap();
    table.upsert(std::slice::from_ref(&live), Replace::NotNewer).await.unwrap();
    table.upsert(std::slice::from_ref(&retired), Replace::NotNewer).await.unwrap();
    table.upsert(std::slice::from_ref(&live), Replace::NotNewer).await.unwrap();
    let rows = table.rows().await.unwrap();
    assert_eq!(rows["kafka-connector-1.0.0"], retired, "the newest state stays, whatever arrives after it");
    assert_eq!(table.remove("kafka-connector-1.0.0").await.unwrap(), Removal::Removed);
    assert_eq!(table.remove("kafka-connector-1.0.0").await.unwrap(), Removal::Absent);
}

/// The obsrv-mirror function's handler: the outbox items of registrations on DynamoDB (the
/// stand-in), as the table's stream hands them over, copied into Obsrv's table; while PostgreSQL
/// cannot be written the batch fails from its first record (Lambda retries it, then dead-letters
/// it), and once it can, the same batch goes through, and again without effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_function_copies_the_stream_s_registrations() {
    use registry_shared::lambda::obsrv_stream::handle_stream;
    use registry_shared::registry::AuditOutbox;
    if !aws_available().await {
        return;
    }
    let Some(database) = ObsrvDatabase::reserved() else { return };
    let app = TestApp::spawn(BackendKind::Aws).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "2.0.0")).await;
    let Backend::Aws { table, .. } = &app.config.backend else { unreachable!() };
    let sdk = registry_shared::test_support::aws::stand_in().await.unwrap();
    let outbox = registry_shared::adapters::aws::DynamoRowStore::new(&sdk, table.clone());
    let records = outbox.pending(10).await.unwrap();
    assert_eq!(records.len(), 2);
    // The stream's records of the two outbox items, as Lambda passes them (NEW_IMAGE).
    let stream_records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            json!({
                "eventID": format!("event-{i}"), "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {
                    "Keys": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}},
                    "NewImage": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}, "event": {"S": record.to_json().unwrap()}},
                    "SequenceNumber": format!("10000000000000000000{i}"), "SizeBytes": 512, "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/registry/stream/2026-11-28T00:00:00.000"
            })
        })
        .collect();
    let event = serde_json::from_value(json!({ "Records": stream_records })).unwrap();
    let rows = app.rows();

    let obsrv = Obsrv::table_only(std::sync::Arc::new(PostgresObsrvTable::new(&database.url).unwrap()));
    let answer = serde_json::to_value(handle_stream(&*rows, &obsrv, &event).await).unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "100000000000000000000"}]}),
        "PostgreSQL is down"
    );

    database.create().await;
    for _ in 0..2 {
        let answer = serde_json::to_value(handle_stream(&*rows, &obsrv, &event).await).unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
        let table = table_rows(&database).await;
        let statuses: Vec<(&str, &str)> =
            table.iter().map(|(id, row)| (id.as_str(), row["status"].as_str().unwrap())).collect();
        assert_eq!(statuses, [("kafka-connector-1.0.0", "Retired"), ("kafka-connector-2.0.0", "Live")]);
    }

    // A deletion's event removes the row from the table too (this server writes no table itself).
    let deleted = app.transition("kafka-connector-1.0.0", "Delete", Some("never used")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let records = outbox.pending(10).await.unwrap();
    let record =
        records.iter().find(|r| r.detail.deleted_ids == ["kafka-connector-1.0.0"]).expect("the deletion's event");
    let event = serde_json::from_value(json!({"Records": [{
        "eventID": "event-delete", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}},
            "NewImage": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}, "event": {"S": record.to_json().unwrap()}},
            "SequenceNumber": "200000000000000000000", "SizeBytes": 512, "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/registry/stream/2026-11-28T00:00:00.000"
    }]}))
    .unwrap();
    let answer = serde_json::to_value(handle_stream(&*rows, &obsrv, &event).await).unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(table_rows(&database).await.keys().collect::<Vec<_>>(), ["kafka-connector-2.0.0"]);
}

/// Inserts a row as Obsrv's command-service writes it (connector_registry.py): `SYSTEM`,
/// microsecond local timestamps, `source` and `ui_spec` as JSON.
async fn insert_as_the_command_service_does(
    client: &tokio_postgres::Client,
    (id, connector_id, version, status, source_url): (&str, &str, &str, &str, &str),
    (technology, runtime, source): (&str, &str, Value),
    ui_spec: &Value,
) {
    client
        .execute(
            "INSERT INTO connector_registry (id, connector_id, name, type, category, version, description, technology, \
             runtime, licence, owner, iconurl, status, source_url, source, ui_spec, created_by, updated_by, \
             created_date, updated_date, live_date) VALUES ($1, $2, $3, 'source', 'stream', $4, $5, $6, $7, 'MIT', \
             'Sunbird', 'data:image/svg+xml;base64,PHN2Zy8+', $8, $9, $10, $11, 'SYSTEM', 'SYSTEM', \
             '2024-06-25 04:38:28.732123', '2024-07-01 10:00:00.250999', '2024-06-25 04:38:28.732456')",
            &[
                &id,
                &connector_id,
                &format!("{connector_id} name"),
                &version,
                &format!("{connector_id} description"),
                &technology,
                &runtime,
                &status,
                &source_url,
                &source,
                ui_spec,
            ],
        )
        .await
        .unwrap();
}

/// `registry-server import-obsrv`: a PostgreSQL filled as Obsrv's command-service fills it, and
/// its archives in a folder; afterwards read and list answer for those rows as Obsrv's API did.
async fn an_obsrv_installation_s_registrations_are_imported_as_they_are(kind: BackendKind) {
    use registry_shared::adapters::obsrv_folder::ObsrvFolder;
    use registry_shared::distribution::Limits;
    use registry_shared::registry::obsrv::import;
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let client = database.client().await;
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(folder.path().join("connector-registry")).unwrap();
    let store = |name: &str, bytes: Vec<u8>| {
        std::fs::write(folder.path().join("connector-registry").join(name), bytes).unwrap()
    };
    let ui = test_support::ui_config();
    let flink = |id: &str, version: &str| json!({"source": format!("{id}-{version}"), "main_class": "org.example.Main", "main_program": format!("{id}-{version}.jar")});
    for (version, status, name) in
        [("1.0.0", "Retired", "kafka.tar_aaaaaa.gz"), ("1.1.0", "Live", "kafka.tar_bbbbbb.gz")]
    {
        store(name, Package::single_tenant("kafka-connector", version).tar_gz());
        let row = (format!("kafka-connector-{version}"), version, status, name);
        insert_as_the_command_service_does(
            &client,
            (&row.0, "kafka-connector", row.1, row.2, row.3),
            ("scala", "flink", flink("kafka-connector", version)),
            &ui,
        )
        .await;
    }
    store(
        "object-store.tar_cccccc.gz",
        Package::multi_tenant("object-store", "0.1.0", &["s3-connector", "gcs-connector"]).tar_gz(),
    );
    for tenant in ["s3-connector", "gcs-connector"] {
        let source = json!({"source": "object-store-0.1.0", "main_class": null, "main_program": "main.py"});
        insert_as_the_command_service_does(
            &client,
            (&format!("{tenant}-0.1.0"), tenant, "0.1.0", "Live", "object-store.tar_cccccc.gz"),
            ("python", "spark", source),
            &ui,
        )
        .await;
    }
    store("broken.tar_dddddd.gz", b"not an archive".to_vec());
    insert_as_the_command_service_does(
        &client,
        ("broken-connector-1.0.0", "broken-connector", "1.0.0", "Live", "broken.tar_dddddd.gz"),
        ("scala", "flink", flink("broken-connector", "1.0.0")),
        &ui,
    )
    .await;
    insert_as_the_command_service_does(
        &client,
        ("lost-connector-1.0.0", "lost-connector", "1.0.0", "Live", "lost.tar_eeeeee.gz"),
        ("scala", "flink", flink("lost-connector", "1.0.0")),
        &ui,
    )
    .await;

    let app = TestApp::spawn(kind).await;
    let (table, source) = (PostgresObsrvTable::new(&database.url).unwrap(), ObsrvFolder::new(folder.path()));
    let run = |dry_run: bool| {
        let (archives, rows) = (app.archives(), app.rows());
        let (table, source) = (&table, &source);
        async move { import(table, source, &*archives, &*rows, &Limits::default(), dry_run).await.unwrap() }
    };
    let expected = ["gcs-connector-0.1.0", "kafka-connector-1.0.0", "kafka-connector-1.1.0", "s3-connector-0.1.0"];
    let dry = run(true).await;
    let mut imported = dry.imported.clone();
    imported.sort();
    assert_eq!(imported, expected);
    assert!(app.all_rows().await.is_empty(), "a dry run writes nothing");

    let report = run(false).await;
    let mut imported = report.imported.clone();
    imported.sort();
    assert_eq!(imported, expected);
    let refused: BTreeMap<String, String> = report.refused.into_iter().collect();
    assert!(refused["broken-connector-1.0.0"].contains("refused"), "{refused:?}");
    assert!(refused["lost-connector-1.0.0"].contains("missing"), "{refused:?}");

    // Read and list answer as Obsrv's API answered from the table.
    let rows = table_rows(&database).await;
    let listed = app.list(json!({"filters": {}})).await;
    let listed = listed.body["result"]["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4);
    for id in expected {
        // Read answers Live rows (as the original), list every row.
        let entry = listed.iter().find(|r| r["id"] == id).unwrap().clone();
        let read = app.read(id).await;
        let answered = if rows[id]["status"] == "Live" {
            assert_eq!(read.status, StatusCode::OK, "{}", read.text);
            read.body["result"].clone()
        } else {
            assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.text);
            entry.clone()
        };
        // List carries no ui_spec.
        for column in READ_FIELDS.into_iter().filter(|column| *column != "ui_spec") {
            assert_eq!(rows[id][column], answered[column], "{id}: {column}");
            assert_eq!(rows[id][column], entry[column], "{id}: {column} in list");
        }
        if rows[id]["status"] == "Live" {
            assert_eq!(rows[id]["ui_spec"], answered["ui_spec"], "{id}: ui_spec");
        }
        assert_eq!((&rows[id]["technology"], &rows[id]["runtime"]), (&entry["technology"], &entry["runtime"]), "{id}");
    }
    assert_eq!(rows["kafka-connector-1.0.0"]["created_date"], "2024-06-25T04:38:28.732Z");

    // Obsrv's runtimes get the imported archives from url-access.
    let body = json!({"request": {"files": ["kafka.tar_bbbbbb.gz"], "access": "read", "type": "connector"}});
    let url_access = app.post_json("/v2/files/url-access", body).await;
    assert_eq!(url_access.status, StatusCode::OK, "{}", url_access.text);

    // Importing again changes nothing; registrations go on from the imported versions.
    let again = run(false).await;
    assert!(again.imported.is_empty(), "{again:?}");
    assert_eq!(again.present.len(), 4);
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "2.0.0")).await;
    let live = app.list(json!({"filters": {"status": ["Live"]}})).await;
    let live: Vec<&str> =
        live.body["result"]["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(live, ["gcs-connector-0.1.0", "kafka-connector-2.0.0", "s3-connector-0.1.0"]);
}

/// The second way Obsrv's runtimes may fetch archives: Obsrv's own url-access, from its own
/// container. With `--obsrv-archives`, each row's archive is there before the row is in the table.
async fn archives_reach_obsrv_s_container_before_their_rows(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let container = tempfile::tempdir().unwrap();
    let (url, folder) = (database.url.clone(), container.path().display().to_string());
    let app = TestApp::spawn_with(kind, move |config| {
        config.obsrv_postgres = Some(url);
        config.obsrv_archives = Some(folder);
    })
    .await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    registered(&app, "object-store.tar.gz", &Package::multi_tenant("object-store", "0.1.0", &["s3-connector"])).await;
    let stored = app.stored_archives().await;
    let source_urls: Vec<String> = database
        .wait_until("SELECT source_url FROM connector_registry ORDER BY id", CAUGHT_UP, |rows| {
            // Whenever a row is there, its archive is there already.
            let names: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
            for name in &names {
                let path = container.path().join("connector-registry").join(name);
                assert!(path.exists(), "{name}: a row in the table before its archive in Obsrv's container");
            }
            if names.len() == 2 { Ok(names) } else { Err(format!("{names:?}")) }
        })
        .await;
    for name in source_urls {
        let copied = std::fs::read(container.path().join("connector-registry").join(&name)).unwrap();
        let original = &stored.iter().find(|(stored, _)| *stored == name).unwrap().1;
        assert_eq!(&copied, original, "{name}: the archive, byte for byte");
    }
}

/// The obsrv-mirror function with Obsrv's bucket: each registration's archive lands under its
/// `connector-registry/` before the rows are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_function_copies_archives_into_obsrv_s_bucket() {
    use registry_shared::adapters::aws::S3ArchiveStore;
    use registry_shared::lambda::obsrv_stream::handle_stream;
    use registry_shared::registry::AuditOutbox;
    use registry_shared::registry::obsrv::ArchiveCopy;
    if !aws_available().await {
        return;
    }
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let app = TestApp::spawn(BackendKind::Aws).await;
    registered(&app, "kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0")).await;
    let Backend::Aws { table, .. } = &app.config.backend else { unreachable!() };
    let sdk = registry_shared::test_support::aws::stand_in().await.unwrap();
    let outbox = registry_shared::adapters::aws::DynamoRowStore::new(&sdk, table.clone());
    let record = outbox.pending(10).await.unwrap().remove(0);
    let event = serde_json::from_value(json!({"Records": [{
        "eventID": "event-0", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}},
            "NewImage": {"pk": {"S": "audit"}, "sk": {"S": record.outbox_key()}, "event": {"S": record.to_json().unwrap()}},
            "SequenceNumber": "100", "SizeBytes": 512, "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/registry/stream/2026-11-28T00:00:00.000"
    }]}))
    .unwrap();
    let bucket = registry_shared::test_support::aws::unique_name("obsrv");
    let obsrv_bucket = S3ArchiveStore::new(&sdk, bucket.clone(), "obsrv/".to_owned()).unwrap();
    obsrv_bucket.create_bucket_if_missing().await.unwrap();
    let obsrv = Obsrv {
        table: std::sync::Arc::new(PostgresObsrvTable::new(&database.url).unwrap()),
        archives: Some(ArchiveCopy { from: app.archives(), to: std::sync::Arc::new(obsrv_bucket) }),
    };
    let answer = serde_json::to_value(handle_stream(&*app.rows(), &obsrv, &event).await).unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let (name, bytes) = app.stored_archives().await.remove(0);
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let copied = s3.get_object().bucket(&bucket).key(format!("obsrv/connector-registry/{name}")).send().await.unwrap();
    assert_eq!(copied.body.collect().await.unwrap().into_bytes().as_ref(), bytes.as_slice());
    assert_eq!(table_rows(&database).await["kafka-connector-1.0.0"]["source_url"], name);
}

/// With the mirror on, register says what Obsrv's runtimes cannot do with a package (a zip; a
/// version registered again with other bytes, where the operator allows that); without it,
/// register answers as the original.
async fn registrations_say_what_obsrv_s_runtimes_cannot_do(kind: BackendKind) {
    let Some(database) = ObsrvDatabase::fresh().await else { return };
    let url = database.url.clone();
    let app = TestApp::spawn_with(kind, move |config| {
        config.obsrv_postgres = Some(url);
        config.versions = registry_shared::domain::Versions::Overwritable;
    })
    .await;
    let tar = app.register("kafka.tar.gz", Package::single_tenant("kafka-connector", "1.0.0").tar_gz()).await;
    assert_eq!(tar.status, StatusCode::OK, "{}", tar.text);
    assert!(tar.body["result"].get("warnings").is_none(), "{}", tar.text);

    let zip = app.register("mqtt.zip", Package::single_tenant("mqtt-connector", "1.0.0").zip()).await;
    assert_eq!(zip.status, StatusCode::OK, "{}", zip.text);
    let warnings = zip.body["result"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{}", zip.text);
    assert!(warnings[0].as_str().unwrap().contains(".tar.gz"), "{}", zip.text);

    let same = app.register("kafka.tar.gz", Package::single_tenant("kafka-connector", "1.0.0").tar_gz()).await;
    assert!(same.body["result"].get("warnings").is_none(), "the same bytes again: {}", same.text);
    let changed = Package::single_tenant("kafka-connector", "1.0.0")
        .replace("kafka-connector-1.0.0.jar", b"PK other program bytes")
        .tar_gz();
    let again = app.register("kafka.tar.gz", changed).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let warnings = again.body["result"]["warnings"].as_array().unwrap();
    assert!(warnings[0].as_str().unwrap().contains("new version"), "{}", again.text);

    let plain = TestApp::spawn(kind).await;
    let zip = plain.register("mqtt.zip", Package::single_tenant("mqtt-connector", "1.0.0").zip()).await;
    assert_eq!(keys(&zip.body["result"]), ["message"], "no mirror, the original's answer: {}", zip.text);
}
