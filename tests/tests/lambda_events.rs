//! Every file in `events/` (the fixtures `sam local invoke -e` uses) through the Lambda functions'
//! handlers, wired as the functions wire them, over S3 and DynamoDB on the local stand-in.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::api::{self, Api, FilesState, RegisterState};
use registry_shared::auth::Authenticator;
use registry_shared::distribution::Limits;
use registry_shared::lambda;
use registry_shared::registry::{Catalog, ReadMode, Registrar, UploadOutcome};
use registry_shared::test_support::Package;
use registry_shared::test_support::aws::{stand_in, unique_name};
use serde_json::Value;

/// Each fixture, in the order they run, with the function that takes it and what it must answer.
const EXPECTED: &[(&str, Api, u16, Option<&str>)] = &[
    ("register-v2.json", Api::ConnectorRegister, 200, None),
    ("register-v1.json", Api::ConnectorRegister, 200, None),
    ("register-v2-viewer.json", Api::ConnectorRegister, 403, Some("FORBIDDEN ACCESS")),
    ("register-v2-invalid-base64.json", Api::ConnectorRegister, 400, Some("FAILED_TO_UPLOAD")),
    ("register-v2-plain-text.json", Api::ConnectorRegister, 415, Some("UNSUPPORTED_MEDIA_TYPE")),
    ("register-v2-by-reference-missing.json", Api::ConnectorRegister, 404, Some("FAILED_TO_REGISTER_CONNECTOR")),
    ("read-v2.json", Api::ConnectorsRead, 200, None),
    ("read-v1.json", Api::ConnectorsRead, 200, None),
    ("read-v2-no-token.json", Api::ConnectorsRead, 401, Some("UNAUTHORIZED ACCESS")),
    ("read-v2-miss.json", Api::ConnectorsRead, 404, Some("CONNECTOR_NOT_FOUND")),
    ("read-v2-edit.json", Api::ConnectorsRead, 404, Some("CONNECTOR_NOT_FOUND")),
    ("list-v2.json", Api::ConnectorsList, 200, None),
    ("list-v2-filters.json", Api::ConnectorsList, 200, None),
    ("list-v1.json", Api::ConnectorsList, 200, None),
    ("list-v2-invalid.json", Api::ConnectorsList, 400, Some("CONNECTORS_LIST_INPUT_INVALID")),
    ("generate-url-v2.json", Api::FilesGenerateUrl, 200, None),
    ("generate-url-v2-viewer-write.json", Api::FilesGenerateUrl, 403, Some("FORBIDDEN ACCESS")),
];

/// The S3 notifications, for the register-upload function.
const S3_EVENTS: &[&str] = &["s3-object-created.json", "s3-object-created-broken.json"];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[test]
fn every_event_file_has_an_expectation() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> =
        EXPECTED.iter().map(|(name, ..)| name.to_string()).chain(S3_EVENTS.iter().map(|s| s.to_string())).collect();
    expected.sort();
    assert_eq!(files, expected, "every fixture in events/ is exercised, and only those");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_answer_every_event_fixture() {
    let Some(sdk) = stand_in().await else { return };
    let rows = Arc::new(DynamoRowStore::new(&sdk, unique_name("events")));
    rows.create_table_if_missing().await.unwrap();
    let archives = Arc::new(S3ArchiveStore::new(&sdk, unique_name("events"), "").unwrap());
    archives.create_bucket_if_missing().await.unwrap();
    let files_state = Arc::new(FilesState { archives: archives.clone(), expiry: std::time::Duration::from_secs(600) });
    let register_state = Arc::new(RegisterState {
        registrar: Registrar::new(archives, rows.clone(), Limits::default()),
        max_body_bytes: 6 * 1024 * 1024,
    });
    let catalog = Arc::new(Catalog::new(rows));
    // The deployed shape: API Gateway's JWT authorizer verified the token; the function checks roles.
    let auth = Authenticator::GatewayClaims;

    for (file, api, status, code) in EXPECTED {
        let event: Value = serde_json::from_str(&std::fs::read_to_string(events_dir().join(file)).unwrap()).unwrap();
        let response = match api {
            Api::ConnectorRegister => {
                let state = register_state.clone();
                lambda::invoke(
                    *api,
                    auth.clone(),
                    move |r| {
                        let s = state.clone();
                        async move { api::register(&s, r).await }
                    },
                    event,
                )
                .await
            }
            Api::ConnectorsRead => {
                let catalog = catalog.clone();
                lambda::invoke(
                    *api,
                    auth.clone(),
                    move |r| {
                        let c = catalog.clone();
                        async move { api::read(&c, r).await }
                    },
                    event,
                )
                .await
            }
            Api::FilesGenerateUrl => {
                let (files, gate) = (files_state.clone(), auth.clone());
                lambda::invoke(
                    *api,
                    auth.clone(),
                    move |r| {
                        let (f, g) = (files.clone(), gate.clone());
                        async move { api::generate_url(&f, &g, r).await }
                    },
                    event,
                )
                .await
            }
            Api::ConnectorsList => {
                let catalog = catalog.clone();
                lambda::invoke(
                    *api,
                    auth.clone(),
                    move |r| {
                        let c = catalog.clone();
                        async move { api::list_within(&c, r, Some(api::LAMBDA_RESPONSE_BYTES)).await }
                    },
                    event,
                )
                .await
            }
        };
        assert_eq!(response["statusCode"], *status, "{file}: {response}");
        let body: Value = serde_json::from_str(response["body"].as_str().expect("a body")).expect("a JSON body");
        assert_eq!(body["id"], api.id(), "{file}");
        match code {
            Some(code) => assert_eq!(body["error"]["code"], *code, "{file}: {body}"),
            None => assert_eq!(body["params"]["status"], "SUCCESS", "{file}: {body}"),
        }
        match *file {
            "register-v2.json" | "register-v1.json" => {
                assert_eq!(body["result"]["message"], "connector registered successfully.")
            }
            "read-v2.json" | "read-v1.json" => {
                assert_eq!(body["result"]["id"], "http-poller-connector-1.0.0");
                assert_eq!(body["result"]["status"], "Live");
            }
            "list-v2.json" | "list-v2-filters.json" | "list-v1.json" => {
                assert_eq!(body["result"]["count"], 1, "{file}: {body}");
                assert_eq!(body["params"]["msgid"], "4a7f14c3-d61e-4d4f-be78-181834eeff6d");
            }
            "read-v2-miss.json" => assert_eq!(body["error"]["message"], "Connector not found: postgres-conn"),
            "generate-url-v2.json" => {
                let signed = &body["result"][0];
                assert!(signed["fileName"].as_str().unwrap().starts_with("http-poller-connector.tar_"), "{body}");
                assert!(signed["preSignedUrl"].as_str().unwrap().contains("X-Amz-Signature="), "{body}");
            }
            "read-v2-no-token.json" => assert_eq!(body["error"]["message"], "No token provided"),
            "register-v2-viewer.json" => assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .ends_with("have access to this action: dataset_manager, admin."),
                "{body}"
            ),
            _ => {}
        }
    }
}

fn event(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(events_dir().join(file)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_under_the_incoming_prefix_register_once_and_broken_ones_are_removed() {
    let Some(sdk) = stand_in().await else { return };
    let created = event("s3-object-created.json");
    let bucket = created["Records"][0]["s3"]["bucket"]["name"].as_str().unwrap().to_owned();
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket.clone(), "").unwrap());
    archives.create_bucket_if_missing().await.unwrap();
    let rows = Arc::new(DynamoRowStore::new(&sdk, unique_name("uploads")));
    rows.create_table_if_missing().await.unwrap();
    let registrar = Registrar::new(archives.clone(), rows.clone(), Limits::default());
    let catalog = Catalog::new(rows);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let put = |key: &'static str, bytes: Vec<u8>| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move { s3.put_object().bucket(bucket).key(key).body(bytes.into()).send().await.unwrap() }
    };
    put("incoming/http-poller-connector.tar.gz", Package::single_tenant("http-poller-connector", "1.0.0").tar_gz())
        .await;
    put("incoming/broken upload.tar.gz", b"this is no archive".to_vec()).await;
    let stored = || {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            let listed = s3.list_objects_v2().bucket(bucket).prefix("connector-registry/").send().await.unwrap();
            listed.contents().len()
        }
    };
    let tags = |key: &'static str| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            let tagging = s3.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
            tagging.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect::<Vec<_>>()
        }
    };
    let handle = |file: &str| {
        let payload: S3Event = serde_json::from_value(event(file)).unwrap();
        let (registrar, archives, bucket) = (registrar.clone(), archives.clone(), bucket.clone());
        async move { lambda::handle_s3_event(&registrar, &*archives, &bucket, "incoming/", payload).await.unwrap() }
    };
    let stored_before = stored().await;

    let first = handle("s3-object-created.json").await;
    assert!(matches!(first.as_slice(), [UploadOutcome::Registered { .. }]), "{first:?}");
    let row = catalog.read("http-poller-connector-1.0.0", ReadMode::Live).await.unwrap();
    assert_eq!(stored().await, stored_before + 1);
    assert!(
        tags("incoming/http-poller-connector.tar.gz").await.contains(&("registry-status".into(), "registered".into()))
    );

    // S3 delivers at least once: the same event again changes nothing.
    let again = handle("s3-object-created.json").await;
    assert_eq!(again, [UploadOutcome::AlreadyRegistered]);
    assert_eq!(catalog.read("http-poller-connector-1.0.0", ReadMode::Live).await.unwrap(), row);
    assert_eq!(stored().await, stored_before + 1, "no second copy of the archive");

    // A broken archive is a permanent failure, not an error to retry: it is removed, so that
    // nothing unvalidated stays stored.
    let broken = handle("s3-object-created-broken.json").await;
    let [UploadOutcome::Rejected { reason }] = broken.as_slice() else { panic!("{broken:?}") };
    assert!(reason.contains("Failed to Extract the File"), "{reason}");
    let gone = s3.head_object().bucket(&bucket).key("incoming/broken upload.tar.gz").send().await;
    assert!(
        gone.is_err_and(|e| e.as_service_error().is_some_and(|s| s.is_not_found())),
        "the refused upload is removed"
    );
    assert_eq!(stored().await, stored_before + 1, "and nothing of it is stored");
}
