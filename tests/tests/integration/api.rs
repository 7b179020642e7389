//! The registry driven from outside, over real HTTP and real multipart, through a spawned server.

use registry_server::Backend;
use registry_shared::domain::Timestamp;
use registry_tests::*;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

pub(crate) const READ_FIELDS: [&str; 17] = [
    "id",
    "connector_id",
    "name",
    "type",
    "category",
    "version",
    "description",
    "licence",
    "owner",
    "iconurl",
    "status",
    "ui_spec",
    "created_by",
    "updated_by",
    "created_date",
    "updated_date",
    "live_date",
];
const LIST_FIELDS: [&str; 18] = [
    "id",
    "connector_id",
    "name",
    "type",
    "category",
    "version",
    "description",
    "technology",
    "runtime",
    "licence",
    "owner",
    "iconurl",
    "status",
    "created_by",
    "updated_by",
    "created_date",
    "updated_date",
    "live_date",
];

on_both_backends!(
    register_read_and_list_a_single_tenant_package,
    a_multi_tenant_package_registers_one_row_per_connector,
    a_new_version_retires_the_old_one_and_re_registering_keeps_creation,
    read_modes_and_misses,
    unknown_routes_get_the_catch_all_404,
    list_filters_orders_and_pages,
    list_refuses_bad_requests_with_the_original_messages,
    register_refuses_bad_uploads_with_register_style_errors,
    hostile_archives_are_refused_and_nothing_is_written,
    bodies_over_the_upload_limit_get_413,
    a_failed_registration_changes_nothing,
    registrations_survive_a_restart,
    concurrent_registrations_of_one_connector_leave_exactly_one_live,
    upload_through_a_url_then_register_by_reference,
    a_refused_upload_is_removed_and_never_readable,
    generate_url_refuses_bad_requests,
    lists_right_after_a_registration_show_it_on_every_instance,
    a_package_over_the_write_budget_is_413_and_writes_nothing,
);

fn kafka(version: &str) -> Vec<u8> {
    Package::single_tenant("kafka-connector", version).tar_gz()
}

async fn register_read_and_list_a_single_tenant_package(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let bytes = kafka("1.0.0");
    let answer = app.register("kafka-connector.tar.gz", bytes.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_envelope(&answer, "api.connector.register", "SUCCESS");
    assert_eq!(keys(&answer.body), ["id", "ver", "ts", "params", "responseCode", "result"]);
    assert_eq!(keys(&answer.body["params"]), ["status", "resmsgid"], "no msgid without a request msgid");
    assert_eq!(answer.body["responseCode"], "OK");
    assert_eq!(answer.body["result"], json!({"message": "connector registered successfully."}));

    let read = app.read("kafka-connector-1.0.0").await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_envelope(&read, "api.connectors.read", "SUCCESS");
    assert_eq!(keys(&read.body["params"]), ["status", "resmsgid"]);
    // Read again (the embedded store answers from the view it kept): the same row, in an envelope
    // of its own, stamped now.
    let again = app.read("kafka-connector-1.0.0").await;
    assert_envelope(&again, "api.connectors.read", "SUCCESS");
    assert_eq!(again.body["result"], read.body["result"]);
    assert_ne!(again.body["params"]["resmsgid"], read.body["params"]["resmsgid"], "each answer its own resmsgid");
    let stamped = Timestamp::parse(again.body["ts"].as_str().unwrap()).expect("ts").as_datetime();
    let age = Timestamp::now().as_datetime() - stamped;
    assert!(age.num_seconds().abs() <= 5, "ts {stamped} is not now");
    let row = &read.body["result"];
    assert_eq!(keys(row), READ_FIELDS);
    assert_eq!(row["id"], "kafka-connector-1.0.0");
    assert_eq!(row["connector_id"], "kafka-connector");
    assert_eq!(row["type"], "source");
    assert_eq!(row["status"], "Live");
    assert_eq!(row["category"], "stream");
    assert_eq!(row["created_by"], "SYSTEM");
    assert_eq!(row["updated_by"], "SYSTEM");
    assert!(row["iconurl"].as_str().unwrap().starts_with("data:image/svg+xml;base64,"));
    assert_eq!(keys(&row["ui_spec"]), ["title", "type", "properties", "required"], "ui_spec keeps its key order");
    assert_eq!(keys(&row["ui_spec"]["properties"]), ["zeta", "alpha"]);
    for field in ["created_date", "updated_date", "live_date"] {
        assert!(is_row_timestamp(&row[field]), "{field}: {}", row[field]);
    }

    let list = app.list(json!({})).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_envelope(&list, "api.connectors.list", "SUCCESS");
    assert_eq!(keys(&list.body["params"]), ["status", "msgid", "resmsgid"]);
    assert_eq!(list.body["params"]["msgid"], MSGID);
    assert_eq!(keys(&list.body["result"]), ["data", "count"], "no cursor without a limit");
    assert_eq!(list.body["result"]["count"], 1);
    let listed = &list.body["result"]["data"][0];
    assert_eq!(keys(listed), LIST_FIELDS);
    assert_eq!(listed["technology"], "scala");
    assert_eq!(listed["runtime"], "flink");

    // The archive is kept byte for byte under its stored name.
    let stored = app.stored_archives().await;
    assert_eq!(stored.len(), 1);
    let (name, content) = &stored[0];
    assert!(
        name.starts_with("kafka-connector.tar_")
            && name.ends_with(".gz")
            && name.len() == "kafka-connector.tar_123456.gz".len(),
        "{name}"
    );
    assert_eq!(content, &bytes);
}

async fn a_multi_tenant_package_registers_one_row_per_connector(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let package = Package::multi_tenant("jdbc-connector", "1.0.0", &["postgres-connector", "mysql-connector"]);
    let answer = app.register("jdbc.zip", package.zip()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        app.all_rows().await,
        [
            ("mysql-connector-1.0.0".to_owned(), "Live".to_owned()),
            ("postgres-connector-1.0.0".to_owned(), "Live".to_owned())
        ]
    );
    let pg = app.read("postgres-connector-1.0.0").await;
    assert_eq!(pg.body["result"]["ui_spec"]["title"], "Setup");
    assert_eq!(pg.body["result"]["category"], "batch");
    assert_eq!(app.stored_archives().await.len(), 1, "one archive for the whole package");
}

async fn a_new_version_retires_the_old_one_and_re_registering_keeps_creation(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    let first = app.read("kafka-connector-1.0.0").await.body["result"].clone();
    assert_eq!(app.register("k.tar.gz", kafka("2.0.0")).await.status, StatusCode::OK);
    assert_eq!(
        app.all_rows().await,
        [
            ("kafka-connector-1.0.0".to_owned(), "Retired".to_owned()),
            ("kafka-connector-2.0.0".to_owned(), "Live".to_owned())
        ]
    );
    let retired = app.read("kafka-connector-1.0.0").await;
    assert_eq!(retired.status, StatusCode::NOT_FOUND, "Retired rows are never readable");

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    let again = app.read("kafka-connector-1.0.0").await.body["result"].clone();
    assert_eq!(again["status"], "Live");
    assert_eq!(again["created_date"], first["created_date"]);
    assert_eq!(again["live_date"], first["live_date"]);
    assert_eq!(again["created_by"], "SYSTEM");
    assert_ne!(again["updated_date"], first["updated_date"]);
    assert_eq!(app.read("kafka-connector-2.0.0").await.status, StatusCode::NOT_FOUND, "2.0.0 was retired");
    assert_eq!(app.all_rows().await.len(), 2);
}

async fn read_modes_and_misses(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    app.register("k.tar.gz", kafka("1.0.0")).await;
    for query in [
        "kafka-connector-1.0.0",
        "kafka-connector-1.0.0?mode=",
        "kafka-connector-1.0.0?mode=foo",
        "kafka-connector-1.0.0?mode=edit&mode=edit",
    ] {
        assert_eq!(app.read(query).await.status, StatusCode::OK, "{query}");
    }
    for query in ["kafka-connector-1.0.0?mode=edit", "kafka-connector-1.0.0?mode=EDIT"] {
        let miss = app.read(query).await;
        assert_eq!(miss.status, StatusCode::NOT_FOUND, "{query}: registered rows are Live, not Draft");
    }
    let miss = app.read("postgres-conn").await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_envelope(&miss, "api.connectors.read", "FAILED");
    assert_eq!(keys(&miss.body), ["id", "ver", "ts", "params", "responseCode", "result", "error"]);
    assert_eq!(miss.body["responseCode"], "NOT_FOUND");
    assert_eq!(miss.body["result"], json!({}));
    assert_eq!(
        miss.body["error"],
        json!({"code": "CONNECTOR_NOT_FOUND", "message": "Connector not found: postgres-conn"})
    );
    let encoded = app.read("a%20b").await;
    assert_eq!(encoded.body["error"]["message"], "Connector not found: a b");
    // What would hide or reorder text is shown by its code point, not passed through.
    let hidden = app.read("a%E2%80%AEb%1B%5B31m").await;
    assert_eq!(hidden.body["error"]["message"], "Connector not found: a<U+202E>b<U+001B>[31m");
}

async fn unknown_routes_get_the_catch_all_404(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let cases = [
        (reqwest::Method::GET, "/v2/connectors/list"),
        (reqwest::Method::GET, "/v2/connectors/read/"),
        (reqwest::Method::POST, "/v2/connectors/register"),
        (reqwest::Method::DELETE, "/v2/connectors/read/x"),
        (reqwest::Method::GET, "/"),
    ];
    for (method, path) in cases {
        let answer = TestApp::answer(app.client.request(method.clone(), app.url(path)).send().await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(answer.body["id"], "api");
        assert_eq!(answer.body["responseCode"], "NOT_FOUND");
        assert_eq!(answer.body["result"], "");
        assert_eq!(answer.body["params"]["resmsgid"], "");
        assert_eq!(answer.body["error"], json!({"code": "ROUTE_NOT_FOUND", "message": "Route not found"}));
    }
}

async fn list_filters_orders_and_pages(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    app.register("k.tar.gz", kafka("1.0.0")).await;
    app.register("k.tar.gz", kafka("2.0.0")).await;
    app.register("j.tar.gz", Package::multi_tenant("jdbc", "1.0.0", &["pg", "mysql"]).tar_gz()).await;
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["result"]["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = app.list(json!({})).await;
    assert_eq!(ids(&all), ["kafka-connector-1.0.0", "kafka-connector-2.0.0", "mysql-1.0.0", "pg-1.0.0"]);
    assert_eq!(all.body["result"]["count"], 4);
    let live = app.list(json!({"filters": {"status": ["Live"]}})).await;
    assert_eq!(ids(&live), ["kafka-connector-2.0.0", "mysql-1.0.0", "pg-1.0.0"]);
    let batch = app.list(json!({"filters": {"category": ["batch"]}})).await;
    assert_eq!(ids(&batch), ["mysql-1.0.0", "pg-1.0.0"], "the categories real packages use can be filtered on");
    let both = app.list(json!({"filters": {"category": ["stream"], "status": ["Retired"]}})).await;
    assert_eq!(ids(&both), ["kafka-connector-1.0.0"]);
    let none = app.list(json!({"filters": {"category": ["Database"], "status": ["Live"]}})).await;
    assert_eq!((none.status, none.body["result"]["count"].clone()), (StatusCode::OK, json!(0)));

    let first = app.list(json!({"limit": 3})).await;
    assert_eq!(ids(&first), ["kafka-connector-1.0.0", "kafka-connector-2.0.0", "mysql-1.0.0"]);
    let cursor = first.body["result"]["cursor"].as_str().expect("a cursor while rows remain").to_owned();
    let second = app.list(json!({"limit": 3, "cursor": cursor})).await;
    assert_eq!(ids(&second), ["pg-1.0.0"]);
    assert!(second.body["result"].get("cursor").is_none(), "no cursor on the last page");
}

async fn list_refuses_bad_requests_with_the_original_messages(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let cases = [
        (
            list_body(json!({"filters": {"category": []}})).to_string(),
            "#properties/request/properties/filters/properties/category/minItems must NOT have fewer than 1 items",
        ),
        (
            list_body(json!({"filters": {"status": ["Foo"]}})).to_string(),
            "#properties/request/properties/filters/properties/status/items/enum must be equal to one of the allowed values",
        ),
        (
            list_body(json!({"filters": {"type": ["x"]}})).to_string(),
            "#properties/request/properties/filters/additionalProperties must NOT have additional properties",
        ),
        ("{}".to_owned(), "#required must have required property 'id'"),
        (String::new(), "#required must have required property 'id'"),
    ];
    for (body, message) in cases {
        let answer = app.list_raw(body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&answer, "api.connectors.list", "FAILED");
        assert_eq!(answer.body["responseCode"], "BAD_REQUEST");
        assert_eq!(answer.body["result"], json!({}));
        assert_eq!(answer.body["error"], json!({"code": "CONNECTORS_LIST_INPUT_INVALID", "message": message}));
    }
    let echoed = app.list(json!({"filters": {"status": []}})).await;
    assert_eq!(echoed.body["params"]["msgid"], MSGID, "msgid is echoed on errors too");
    let not_json = app.list_raw("{not json".to_owned()).await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.body["error"]["code"], "CONNECTORS_LIST_INPUT_INVALID");
    assert!(not_json.body["error"]["message"].as_str().unwrap().starts_with("request body is not valid JSON"));
}

/// Archives that extractors would read otherwise than the registry, or that hide what they
/// name: each a 400 that says why, and nothing written.
async fn hostile_archives_are_refused_and_nothing_is_written(kind: BackendKind) {
    use registry_shared::test_support::{EntryType, RawTar, gzip, zip_with_unlisted_last_entry};
    let app = TestApp::spawn(kind).await;
    let top = "kafka-connector-1.0.0";
    let package = Package::single_tenant("kafka-connector", "1.0.0");
    let mut two_members = package.tar_gz();
    two_members.extend_from_slice(&gzip(&package.clone().replace("metadata.json", b"{}").tar()));
    let mut trailing = package.tar();
    trailing.extend_from_slice(&RawTar::default().file(&format!("{top}/evil.sh"), b"x").finish());
    let listed = package.clone().file(&format!("{top}/libs/run.sh"), b"#!/bin/sh").zip();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "two metadata.json",
            package.clone().json(&format!("{top}/metadata.json"), &json!({})).tar_gz(),
            "archive holds more than one entry at \"kafka-connector-1.0.0/metadata.json\"",
        ),
        ("a second gzip member", two_members, "after the end of the gzip stream"),
        ("data after the end of the tar", trailing, "after the end of the tar archive"),
        ("a zip entry its directory does not list", zip_with_unlisted_last_entry(&listed), "central directory"),
        (
            "a symbolic link out of the package",
            package.clone().entry(&format!("{top}/out"), Entry::Symlink("/tmp".into())).tar_gz(),
            "points outside the archive",
        ),
        (
            "a file under a symbolic link",
            package
                .clone()
                .entry(&format!("{top}/out"), Entry::Symlink("libs".into()))
                .file(&format!("{top}/out/x.sh"), b"x")
                .tar_gz(),
            "lies under a symbolic link",
        ),
        (
            "a PAX size that disagrees",
            RawTar::package(&package).pax(&[("size", b"9")]).file(&format!("{top}/a"), b"abc").finish(),
            "PAX size",
        ),
        (
            "a PAX global header naming a path",
            RawTar::package(&package).global(&[("path", b"evil")]).entry(EntryType::Regular, "x", b"").finish(),
            "global header may not",
        ),
        (
            "a version with a right-to-left override",
            Package::single_tenant("kafka-connector", "1.0.0\u{202e}").tar_gz(),
            "metadata.json: metadata.version: \"1.0.0<U+202E>\" is not a valid version: \
             it must not contain white space, control or invisible characters",
        ),
    ];
    for (what, bytes, expected) in cases {
        let answer = app.register("hostile.tar.gz", bytes).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}: {}", answer.text);
        assert_eq!(answer.body["error"]["code"], "FAILED_TO_REGISTER_CONNECTOR", "{what}");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
        assert!(!message.contains("\\u{"), "{what}: no Debug escapes in {message}");
    }
    assert!(app.all_rows().await.is_empty());
    assert!(app.stored_archives().await.is_empty());
}

async fn register_refuses_bad_uploads_with_register_style_errors(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let check = |answer: &Answer, status: StatusCode, code: &str| {
        assert_eq!(answer.status, status, "{}", answer.text);
        assert_envelope(answer, "api.connector.register", "FAILED");
        assert_eq!(keys(&answer.body), ["id", "ver", "ts", "params", "responseCode", "error"], "no result");
        assert_eq!(keys(&answer.body["error"]), ["code", "message", "trace"]);
        assert_eq!(answer.body["error"]["trace"], "");
        assert_eq!(answer.body["error"]["code"], code);
    };

    let two = Form::new()
        .part("a", Part::bytes(kafka("1.0.0")).file_name("a.tar.gz"))
        .part("b", Part::bytes(kafka("2.0.0")).file_name("b.tar.gz"));
    let answer = app.register_form(two).await;
    check(&answer, StatusCode::BAD_REQUEST, "FAILED_TO_UPLOAD");
    assert_eq!(answer.body["error"]["message"], "Uploading multiple files are not allowed");

    let none = Form::new().text("note", "no file here");
    check(&app.register_form(none).await, StatusCode::BAD_REQUEST, "FAILED_TO_UPLOAD");

    // A text field beside the file is fine, whatever the file field is called.
    let with_field = Form::new().text("note", "hi").part("file3", Part::bytes(kafka("1.0.0")).file_name("k.tgz"));
    assert_eq!(app.register_form(with_field).await.status, StatusCode::OK);

    let invalid = app.register("bad.tar.gz", b"not an archive at all".to_vec()).await;
    check(&invalid, StatusCode::BAD_REQUEST, "FAILED_TO_REGISTER_CONNECTOR");
    assert_eq!(invalid.body["error"]["message"], "Failed to Extract the File: not a tar, tar.gz or zip archive");
    assert_eq!(invalid.body["responseCode"], "BAD_REQUEST");

    let mut wrong_folder = Package::single_tenant("kafka-connector", "3.0.0");
    for (path, _) in &mut wrong_folder.entries {
        *path = path.replace("kafka-connector-3.0.0", "kafka");
    }
    let answer = app.register("k.tar.gz", wrong_folder.tar_gz()).await;
    check(&answer, StatusCode::BAD_REQUEST, "FAILED_TO_REGISTER_CONNECTOR");
    assert_eq!(
        answer.body["error"]["message"],
        "connector source folder not found; expecting kafka-connector-3.0.0 folder inside the archive"
    );

    let plain =
        TestApp::answer(app.client.post(app.url("/v2/connector/register")).body("x").send().await.unwrap()).await;
    check(&plain, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");

    let no_boundary =
        app.client.post(app.url("/v2/connector/register")).header("content-type", "multipart/form-data").body("x");
    check(&TestApp::answer(no_boundary.send().await.unwrap()).await, StatusCode::BAD_REQUEST, "FAILED_TO_UPLOAD");

    let truncated_body = "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k.tar.gz\"\r\n\r\npartial data without an end";
    let truncated = app
        .client
        .post(app.url("/v2/connector/register"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(truncated_body);
    check(&TestApp::answer(truncated.send().await.unwrap()).await, StatusCode::BAD_REQUEST, "FAILED_TO_UPLOAD");

    // Only the one good registration landed.
    assert_eq!(app.all_rows().await, [("kafka-connector-1.0.0".to_owned(), "Live".to_owned())]);
    assert_eq!(app.stored_archives().await.len(), 1, "refused uploads leave no archive behind");
}

async fn bodies_over_the_upload_limit_get_413(kind: BackendKind) {
    let app = TestApp::spawn_with(kind, |config| config.max_upload_bytes = 64 * 1024).await;
    let big = Package::single_tenant("kafka-connector", "1.0.0")
        .file("kafka-connector-1.0.0/libs/big.jar", &vec![7u8; 200 * 1024]);
    let answer = app.register("k.tar", big.tar()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(answer.body["responseCode"], "PAYLOAD_TOO_LARGE");
    assert!(app.all_rows().await.is_empty());
}

async fn a_failed_registration_changes_nothing(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    app.register("k.tar.gz", kafka("1.0.0")).await;
    let before = app.list(json!({})).await.body["result"].clone();
    // Version 2.0.0 whose metadata is broken must not retire 1.0.0.
    let broken = Package::single_tenant("kafka-connector", "2.0.0")
        .replace("metadata.json", b"{\"metadata\": {\"id\": \"kafka-connector\"}}");
    let answer = app.register("k.tar.gz", broken.tar_gz()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"]["message"], "metadata.json: metadata.version is required");
    assert_eq!(app.list(json!({})).await.body["result"], before);
    assert_eq!(app.stored_archives().await.len(), 1);
}

async fn registrations_survive_a_restart(kind: BackendKind) {
    let mut app = TestApp::spawn(kind).await;
    app.register("k.tar.gz", kafka("1.0.0")).await;
    app.register("k.tar.gz", kafka("1.1.0")).await;
    let before = app.read("kafka-connector-1.1.0").await.body["result"].clone();
    app.restart().await;
    assert_eq!(app.read("kafka-connector-1.1.0").await.body["result"], before);
    assert_eq!(
        app.all_rows().await,
        [
            ("kafka-connector-1.0.0".to_owned(), "Retired".to_owned()),
            ("kafka-connector-1.1.0".to_owned(), "Live".to_owned())
        ]
    );
    assert_eq!(app.register("k.tar.gz", kafka("1.2.0")).await.status, StatusCode::OK, "writable after a restart");
}

async fn concurrent_registrations_of_one_connector_leave_exactly_one_live(kind: BackendKind) {
    // All 16 run at once: above the default upload limit, which has its own test.
    let app = TestApp::spawn_with(kind, |config| config.http.max_concurrent_uploads = 16).await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { app.register("k.tar.gz", kafka(&format!("1.{i}.0"))).await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let rows = app.all_rows().await;
    assert_eq!(rows.len(), 16, "{rows:?}");
    assert_eq!(rows.iter().filter(|(_, status)| status == "Live").count(), 1, "{rows:?}");
    assert_eq!(app.stored_archives().await.len(), 16);
}

async fn upload_through_a_url_then_register_by_reference(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let bytes = kafka("1.0.0");
    let answer = app.generate_urls("write", &["kafka-connector.tar.gz"]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_envelope(&answer, "api.files.generate-url", "SUCCESS");
    assert_eq!(answer.body["params"]["msgid"], MSGID);
    let signed = &answer.body["result"][0];
    assert_eq!(keys(signed), ["filePath", "fileName", "preSignedUrl"]);
    let name = signed["fileName"].as_str().unwrap().to_owned();
    assert!(name.starts_with("kafka-connector.tar_") && name.ends_with(".gz"), "{name}");
    assert_eq!(signed["filePath"], format!("connector-registry-uploads/{name}"));

    // The upload is a plain HTTP PUT, as with S3.
    let put = app.client.put(signed["preSignedUrl"].as_str().unwrap()).body(bytes.clone()).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(app.all_rows().await.len(), 0, "uploading registers nothing by itself");
    let unregistered = app.generate_urls("read", &[&name]).await;
    assert_eq!(unregistered.status, StatusCode::NOT_FOUND, "an upload is not readable before it is registered");
    let put_url = signed["preSignedUrl"].as_str().unwrap().to_owned();
    if kind == BackendKind::Embedded {
        let again = app.client.put(&put_url).body(b"other bytes".to_vec()).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT, "an upload URL stores one archive, never overwrites");
    }

    let registered = app.register_by_reference(&name).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.text);
    assert_eq!(registered.body["result"]["message"], "connector registered successfully.");
    assert_eq!(registered.body["params"]["msgid"], MSGID, "a JSON request's msgid is echoed");
    assert_eq!(app.read("kafka-connector-1.0.0").await.body["result"]["status"], "Live");
    assert_eq!(app.stored_archives().await, vec![(name.clone(), bytes.clone())], "the upload is the archive");

    let read_urls = app.generate_urls("read", &[&name]).await;
    assert_eq!(read_urls.status, StatusCode::OK, "{}", read_urls.text);
    let url = read_urls.body["result"][0]["preSignedUrl"].as_str().unwrap().to_owned();
    let download = app.client.get(&url).send().await.unwrap();
    // A download of its type, never a page a browser would sniff and render on this origin.
    let header = |name: &str| download.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("content-type").as_deref(), Some("application/gzip"), "{name}");
    assert_eq!(header("content-disposition"), Some(format!("attachment; filename=\"{name}\"")));
    if kind == BackendKind::Embedded {
        // (S3 sends the type and disposition the URL asks for; nosniff is this server's own.)
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    }
    let downloaded = download.bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), bytes.as_slice());

    let missing = app.register_by_reference("nothing.tar_000000.gz").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    assert_eq!(missing.body["error"]["code"], "FAILED_TO_REGISTER_CONNECTOR");
    let unsafe_name = app.register_by_reference("../../etc/passwd").await;
    assert_eq!(unsafe_name.status, StatusCode::BAD_REQUEST);

    if kind == BackendKind::Embedded {
        let tampered = url.replace("signature=", "signature=00");
        assert_eq!(app.client.get(&tampered).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(
            app.client.get(&put_url).send().await.unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "URLs are single-purpose, and uploads are never served"
        );
    }
    // A second upload to the URL once its name is registered cannot replace the archive.
    let other = Package::single_tenant("kafka-connector", "1.0.0").file("kafka-connector-1.0.0/extra", b"x").tar_gz();
    assert!(app.client.put(&put_url).body(other).send().await.unwrap().status().is_success());
    let again = app.register_by_reference(&name).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(app.stored_archives().await, vec![(name.clone(), bytes.clone())], "the archive is unchanged");
    let again = app.register_by_reference(&name).await;
    assert_eq!(again.status, StatusCode::OK, "a registered name registers again from its archive: {}", again.text);
}

async fn a_refused_upload_is_removed_and_never_readable(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let answer = app.generate_urls("write", &["broken.tar.gz"]).await;
    let signed = &answer.body["result"][0];
    let name = signed["fileName"].as_str().unwrap().to_owned();
    let broken = Package::single_tenant("kafka-connector", "1.0.0").without("ui-config.json").tar_gz();
    let put = app.client.put(signed["preSignedUrl"].as_str().unwrap()).body(broken).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let refused = app.register_by_reference(&name).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.body["error"]["message"], "Unable to locate the ui configuration File");
    let read = app.generate_urls("read", &[&name]).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.text);
    let again = app.register_by_reference(&name).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "the refused upload is gone: {}", again.text);
    assert!(app.stored_archives().await.is_empty());
    assert!(app.all_rows().await.is_empty());
    if let Backend::Embedded { data_dir } = &app.config.backend {
        let uploads = std::fs::read_dir(data_dir.join("archives/connector-registry-uploads")).unwrap().count();
        assert_eq!(uploads, 0, "nothing of the upload is left on disk");
    }
}

async fn generate_url_refuses_bad_requests(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let empty = app.generate_urls("write", &[]).await;
    assert_eq!(
        (empty.status, empty.body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("FILES_NOT_PROVIDED"))
    );
    let many: Vec<String> = (0..21).map(|i| format!("f{i}.tar.gz")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = app.generate_urls("write", &many).await;
    assert_eq!(too_many.body["error"]["code"], "FILES_URL_GENERATION_LIMIT_EXCEED");
    let verb = app.generate_urls("delete", &["a.tar.gz"]).await;
    assert_eq!(verb.status, StatusCode::BAD_REQUEST);
    assert_eq!(verb.body["error"]["code"], "FILES_GENERATE_URL_INPUT_INVALID");
    assert_eq!(
        verb.body["error"]["message"],
        "#properties/request/properties/access/enum must be equal to one of the allowed values"
    );
    let missing = app.generate_urls("read", &["never.tar_123456.gz"]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The original's schema requires nothing at the top; without a request there are no files.
    let no_request = app.post_json("/v2/files/generate-url", json!({"id": "api.files.generate-url"})).await;
    assert_eq!(no_request.body["error"]["code"], "FILES_NOT_PROVIDED", "{}", no_request.text);
    let other_id = app.post_json("/v2/files/generate-url", json!({"id": "api.files.generate.url"})).await;
    assert_eq!(other_id.body["error"]["message"], "#properties/id/enum must be equal to one of the allowed values");
}

/// Read-your-writes: once register answered, every list (any filter, any page) on any instance
/// shows the new row and the retirement, though that instance listed (and may keep) rows before.
/// On AWS the second instance is a second server on the same table, as a second Lambda instance.
async fn lists_right_after_a_registration_show_it_on_every_instance(kind: BackendKind) {
    let writer = TestApp::spawn(kind).await;
    let other = match kind {
        BackendKind::Aws => Some(TestApp::spawn_with(kind, |c| c.backend = writer.config.backend.clone()).await),
        BackendKind::Embedded => None,
    };
    let reader = other.as_ref().unwrap_or(&writer);
    let live = json!({"filters": {"status": ["Live"]}});
    let page = json!({"filters": {"status": ["Live", "Retired"]}, "limit": 1});
    for (i, version) in ["1.0.0", "2.0.0", "3.0.0"].iter().enumerate() {
        assert_eq!(writer.register("k.tar.gz", kafka(version)).await.status, StatusCode::OK);
        let expected_id = format!("kafka-connector-{version}");
        for _ in 0..2 {
            let listed = reader.list(live.clone()).await.body["result"]["data"].clone();
            assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
            assert_eq!(listed[0]["id"], expected_id.as_str());
            let everything = reader.all_rows().await;
            assert_eq!(everything.len(), i + 1);
            assert_eq!(everything.iter().filter(|(_, s)| s == "Live").count(), 1, "{everything:?}");
            let first = reader.list(page.clone()).await.body["result"].clone();
            assert_eq!(first["data"][0]["id"], "kafka-connector-1.0.0");
            assert_eq!(first["cursor"].is_string(), i > 0);
            assert_eq!(reader.read(&expected_id).await.status, StatusCode::OK);
        }
    }
}

/// More than one registration may write (here 20 connectors, each with a 256 KiB icon, some 9 MB
/// of rows) is refused as too large, naming the limit, before anything is stored.
async fn a_package_over_the_write_budget_is_413_and_writes_nothing(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let names: Vec<String> = (0..20).map(|i| format!("tenant-{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut package = Package::multi_tenant("many", "1.0.0", &names);
    for (i, name) in names.iter().enumerate() {
        let icon: Vec<u8> = (0..256 * 1024).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        package = package.replace(&format!("{name}.svg"), &icon);
    }
    let answer = app.register("many.tar.gz", package.tar_gz()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(answer.body["error"]["message"].as_str().unwrap().contains("at most 12"), "{}", answer.text);
    assert!(app.all_rows().await.is_empty());
    assert!(app.stored_archives().await.is_empty(), "no archive is kept");

    // Within the budget, the same shape registers.
    let package = Package::multi_tenant("many", "1.0.0", &names[..12]);
    assert_eq!(app.register("many.tar.gz", package.tar_gz()).await.status, StatusCode::OK);
}
