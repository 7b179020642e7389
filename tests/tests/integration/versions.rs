//! Versions as a registry's users expect them, over HTTP: a version's bytes never change,
//! promotion and rollback without an upload, retirement with a reason, safe deletion.

use registry_shared::domain::Versions;
use registry_shared::test_support::Package;
use registry_tests::*;
use reqwest::StatusCode;

on_both_backends!(
    a_version_registered_again_from_other_bytes_is_refused_and_nothing_is_written,
    the_operator_may_allow_overwriting_a_version,
    promotion_and_rollback_need_no_upload,
    retiring_the_live_version_leaves_none_and_says_so,
    deleting_a_version_removes_its_row_and_its_archive_but_never_a_live_one,
    transitions_refuse_unknown_ids_and_bad_requests,
);

const TRANSITION: &str = "api.connectors.status-transition";

fn kafka(version: &str) -> Vec<u8> {
    Package::single_tenant("kafka-connector", version).tar_gz()
}

/// The same version with a different program: other bytes.
fn kafka_rebuilt(version: &str) -> Vec<u8> {
    Package::single_tenant("kafka-connector", version)
        .file(&format!("kafka-connector-{version}/libs/rebuilt.jar"), b"other bytes")
        .tar_gz()
}

async fn a_version_registered_again_from_other_bytes_is_refused_and_nothing_is_written(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    let before = (app.stored_archives().await, app.read("kafka-connector-1.0.0").await.body["result"].clone());

    let refused = app.register("k.tar.gz", kafka_rebuilt("1.0.0")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_envelope(&refused, "api.connector.register", "FAILED");
    assert_eq!(refused.body["error"]["code"], "CONNECTOR_VERSION_EXISTS");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("kafka-connector-1.0.0") && message.contains("new version"), "{message}");

    // By reference too: the upload is refused, removed, and nothing else is written.
    let urls = app.generate_urls("write", &["k.tar.gz"]).await;
    let result = &urls.body["result"][0];
    let put = app.client.put(result["preSignedUrl"].as_str().unwrap()).body(kafka_rebuilt("1.0.0")).send().await;
    assert!(put.expect("upload").status().is_success());
    let by_reference = app.register_by_reference(result["fileName"].as_str().unwrap()).await;
    assert_eq!(by_reference.status, StatusCode::CONFLICT, "{}", by_reference.text);
    assert_eq!(by_reference.body["error"]["code"], "CONNECTOR_VERSION_EXISTS");

    let after = (app.stored_archives().await, app.read("kafka-connector-1.0.0").await.body["result"].clone());
    assert_eq!(after, before, "no archive and no row changed");
    // The very same archive again is the original's re-registration.
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
}

async fn the_operator_may_allow_overwriting_a_version(kind: BackendKind) {
    let app = TestApp::spawn_with(kind, |config| config.versions = Versions::Overwritable).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    let again = app.register("k.tar.gz", kafka_rebuilt("1.0.0")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(app.all_rows().await, [("kafka-connector-1.0.0".to_owned(), "Live".to_owned())]);
}

async fn promotion_and_rollback_need_no_upload(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    assert_eq!(app.register("k.tar.gz", kafka("2.0.0")).await.status, StatusCode::OK);
    let archives = app.stored_archives().await;

    let rollback = app.transition("kafka-connector-1.0.0", "Live", Some("2.0.0 drops events")).await;
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text);
    assert_envelope(&rollback, TRANSITION, "SUCCESS");
    assert_eq!(rollback.body["params"]["msgid"], MSGID);
    let result = &rollback.body["result"];
    assert_eq!(
        (&result["status"], &result["previous_status"], &result["changed"]),
        (&"Live".into(), &"Retired".into(), &true.into())
    );
    assert_eq!(
        (&result["retired"], &result["live_version"]),
        (&"kafka-connector-2.0.0".into(), &"kafka-connector-1.0.0".into())
    );

    let live = app.read("kafka-connector-1.0.0").await;
    assert_eq!(live.body["result"]["status"], "Live");
    assert_eq!(live.body["result"]["status_reason"], "2.0.0 drops events");
    assert_eq!(app.read("kafka-connector-2.0.0").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.all_rows().await,
        [
            ("kafka-connector-1.0.0".to_owned(), "Live".to_owned()),
            ("kafka-connector-2.0.0".to_owned(), "Retired".to_owned())
        ]
    );
    assert_eq!(app.stored_archives().await, archives, "no upload, no archive written");

    // Promoting the newer one again: a repeat of it changes nothing.
    assert_eq!(app.transition("kafka-connector-2.0.0", "Live", None).await.status, StatusCode::OK);
    let repeat = app.transition("kafka-connector-2.0.0", "Live", None).await;
    assert_eq!((repeat.status, &repeat.body["result"]["changed"]), (StatusCode::OK, &false.into()));
    assert!(repeat.body["result"]["message"].as_str().unwrap().contains("nothing changed"));
    // A registration afterwards still leaves one Live version.
    assert_eq!(app.register("k.tar.gz", kafka("3.0.0")).await.status, StatusCode::OK);
    let live: Vec<_> = app.all_rows().await.into_iter().filter(|(_, status)| status == "Live").collect();
    assert_eq!(live, [("kafka-connector-3.0.0".to_owned(), "Live".to_owned())]);
}

async fn retiring_the_live_version_leaves_none_and_says_so(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    let retired = app.transition("kafka-connector-1.0.0", "Retire", Some("end of support")).await;
    assert_eq!(retired.status, StatusCode::OK, "{}", retired.text);
    let result = &retired.body["result"];
    assert_eq!((&result["status"], &result["live_version"]), (&"Retired".into(), &serde_json::Value::Null));
    assert!(result["message"].as_str().unwrap().contains("has no Live version"), "{}", retired.text);
    assert_eq!(app.read("kafka-connector-1.0.0").await.status, StatusCode::NOT_FOUND);
    let listed = app.list(serde_json::json!({"filters": {"status": ["Retired"]}})).await;
    assert_eq!(listed.body["result"]["data"][0]["status_reason"], "end of support");
}

async fn deleting_a_version_removes_its_row_and_its_archive_but_never_a_live_one(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    assert_eq!(app.register("k.tar.gz", kafka("1.0.0")).await.status, StatusCode::OK);
    assert_eq!(app.register("k.tar.gz", kafka("2.0.0")).await.status, StatusCode::OK);
    assert_eq!(app.stored_archives().await.len(), 2);

    let refused = app.transition("kafka-connector-2.0.0", "Delete", None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_envelope(&refused, TRANSITION, "FAILED");
    assert_eq!(refused.body["error"]["code"], "CONNECTOR_DELETE_FAILURE");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("is Live"));

    let deleted = app.transition("kafka-connector-1.0.0", "Delete", Some("never used")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.body["result"]["status"], "Deleted");
    assert_eq!(app.all_rows().await, [("kafka-connector-2.0.0".to_owned(), "Live".to_owned())]);
    assert_eq!(app.stored_archives().await.len(), 1, "its archive went with it");
    let gone = app.transition("kafka-connector-1.0.0", "Delete", None).await;
    assert_eq!((gone.status, &gone.body["error"]["code"]), (StatusCode::NOT_FOUND, &"CONNECTOR_NOT_FOUND".into()));
    // A deleted version may be registered again, from any bytes.
    assert_eq!(app.register("k.tar.gz", kafka_rebuilt("1.0.0")).await.status, StatusCode::OK);
}

async fn transitions_refuse_unknown_ids_and_bad_requests(kind: BackendKind) {
    let app = TestApp::spawn(kind).await;
    let missing = app.transition("nothing-1.0.0", "Live", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_envelope(&missing, TRANSITION, "FAILED");
    assert_eq!(missing.body["error"]["code"], "CONNECTOR_NOT_FOUND");

    // An id no row can have (longer than any connector id and version together) is unknown too,
    // whatever the store's own key limits.
    let too_long = app.transition(&"x".repeat(3000), "Retire", None).await;
    assert_eq!(
        (too_long.status, &too_long.body["error"]["code"]),
        (StatusCode::NOT_FOUND, &"CONNECTOR_NOT_FOUND".into())
    );
    let read = app.read(&"y".repeat(3000)).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.text);

    let invalid = [
        (transition_body("x-1", "Draft", None), "#properties/request/properties/status/enum"),
        (transition_body("x-1", "Live", Some(&"x".repeat(2000))), "#properties/request/properties/reason/format"),
        (serde_json::json!({"id": TRANSITION}), "#required must have required property 'ver'"),
    ];
    for (body, expected) in invalid {
        let answer = app.post_json("/v2/connectors/status-transition", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.body["error"]["code"], "CONNECTOR_STATUS_TRANSITION_INVALID_INPUT");
        assert!(answer.body["error"]["message"].as_str().unwrap().starts_with(expected), "{}", answer.text);
    }
    let response = app
        .client
        .post(app.url("/v2/connectors/status-transition"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    let answer = TestApp::answer(response).await;
    assert_eq!(
        (answer.status, &answer.body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &"CONNECTOR_STATUS_TRANSITION_INVALID_INPUT".into())
    );
}
