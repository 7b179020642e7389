//! Every file in `events/` (the fixtures `sam local invoke -e` uses) through the Lambda functions'
//! handlers, wired as the functions wire them, over S3 and DynamoDB on the local stand-in.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::api::{self, FilesState, RegisterState, Route};
use registry_shared::auth::{Authenticator, JwtVerifier, TokenRules};
use registry_shared::distribution::Limits;
use registry_shared::lambda;
use registry_shared::registry::{Catalog, ReadMode, Registrar, UploadOutcome};
use registry_shared::test_support::aws::{stand_in, unique_name};
use registry_shared::test_support::{Package, UNRELATED_PUBLIC_KEY};
use serde_json::Value;

/// What each fixture must answer, shared with scripts/testing/test-lambda (which runs the function
/// binaries under the Lambda emulator and `sam local`).
fn expectations() -> Value {
    serde_json::from_str(include_str!("../../event-expectations.json")).expect("event-expectations.json parses")
}

fn api_of(function: &str) -> Route {
    match function {
        "register" => Route::Register,
        "read" => Route::Read,
        "list" => Route::List,
        "generate-url" => Route::GenerateUrl,
        "url-access" => Route::UrlAccess,
        "status-transition" => Route::StatusTransition,
        other => panic!("no API function {other}"),
    }
}

/// One `[pointer, test, value]` check of a response body.
fn check(file: &str, body: &Value, check: &Value) {
    let (pointer, test, expected) = (check[0].as_str().unwrap(), check[1].as_str().unwrap(), &check[2]);
    let actual = body.pointer(pointer).unwrap_or_else(|| panic!("{file}: no {pointer} in {body}"));
    let text = || actual.as_str().unwrap_or_else(|| panic!("{file}: {pointer} is not a string: {body}"));
    let expected_text = || expected.as_str().unwrap();
    let holds = match test {
        "equals" => actual == expected,
        "startsWith" => text().starts_with(expected_text()),
        "endsWith" => text().ends_with(expected_text()),
        "contains" => text().contains(expected_text()),
        other => panic!("unknown check {other}"),
    };
    assert!(holds, "{file}: {pointer} {test} {expected}: {body}");
}

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
    files.retain(|name| name != "env.local.json");
    let expectations = expectations();
    let mut expected: Vec<String> = ["api", "s3", "authorizer", "audit", "schedule"]
        .iter()
        .flat_map(|kind| expectations[kind].as_array().unwrap().iter())
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(files, expected, "every fixture in events/ is exercised, and only those");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_answer_every_event_fixture() {
    let Some(sdk) = stand_in().await else { return };
    let rows = Arc::new(DynamoRowStore::new(&sdk, unique_name("events")));
    rows.create_table_if_missing().await.unwrap();
    let bucket = unique_name("events");
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket.clone(), "").unwrap());
    archives.create_bucket_if_missing().await.unwrap();
    let files_state = Arc::new(FilesState { archives: archives.clone(), expiry: std::time::Duration::from_secs(600) });
    let register_state = Arc::new(RegisterState {
        registrar: Registrar::new(archives, rows.clone(), Limits::default()),
        max_body_bytes: 6 * 1024 * 1024,
    });
    let catalog = Arc::new(Catalog::new(rows));
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());

    let expectations = expectations();
    for expectation in expectations["api"].as_array().unwrap() {
        let file = expectation["event"].as_str().unwrap();
        let function = expectation["function"].as_str().unwrap();
        let api = api_of(function);
        assert_eq!(expectations["apiIds"][function], api.api_id(), "event-expectations.json: the id of {function}");
        // The deployed shape: API Gateway's authorizer verified the caller; the function checks
        // roles in the claim it is configured with (the system route: that IAM let it through).
        let auth = match (api, expectation["env"]["REGISTRY_ROLES_CLAIM"].as_str()) {
            (Route::UrlAccess, _) => Authenticator::GatewayIam,
            (_, Some(claim)) => Authenticator::GatewayClaims(claim.parse().unwrap()),
            (_, None) => Authenticator::GatewayClaims(Default::default()),
        };
        let mut event = event(file);
        if let Some(placeholder) = expectation["registeredArchive"].as_str() {
            let name = registered_archive(&s3, &bucket).await;
            event = serde_json::from_str(&event.to_string().replace(placeholder, &name)).unwrap();
        }
        // The function's handler over `state`, fed the event as Lambda would.
        macro_rules! invoke {
            ($state:expr, |$s:ident, $r:ident| $call:expr) => {{
                let state = $state.clone();
                let handler = move |$r| {
                    let $s = state.clone();
                    async move { $call.await }
                };
                lambda::invoke(api, auth.clone(), handler, event).await
            }};
        }
        let response = match api {
            Route::Register => invoke!(register_state, |s, r| api::register(&s, r)),
            Route::Read => invoke!(catalog, |c, r| api::read(&c, r)),
            Route::GenerateUrl => {
                invoke!((files_state.clone(), auth.clone()), |s, r| api::generate_url(&s.0, &s.1, r))
            }
            Route::UrlAccess => invoke!(files_state, |f, r| api::url_access(&f, r)),
            Route::StatusTransition => invoke!(register_state, |s, r| api::status_transition(&s.registrar, r)),
            Route::List => {
                invoke!(catalog, |c, r| api::list_within(&c, r, Some(api::LAMBDA_RESPONSE_BYTES)))
            }
        };
        assert_eq!(response["statusCode"], expectation["status"], "{file}: {response}");
        let body: Value = serde_json::from_str(response["body"].as_str().expect("a body")).expect("a JSON body");
        assert_eq!(body["id"], api.api_id(), "{file}");
        match expectation["code"].as_str() {
            Some(code) => assert_eq!(body["error"]["code"], code, "{file}: {body}"),
            None => assert_eq!(body["params"]["status"], "SUCCESS", "{file}: {body}"),
        }
        for c in expectation["checks"].as_array().into_iter().flatten() {
            check(file, &body, c);
        }
    }
}

/// The name of an archive a registration stored (the first, by key).
async fn registered_archive(s3: &aws_sdk_s3::Client, bucket: &str) -> String {
    let listed = s3.list_objects_v2().bucket(bucket).prefix("connector-registry/").send().await.unwrap();
    let key = listed.contents().first().and_then(|o| o.key()).expect("a registered archive");
    key.strip_prefix("connector-registry/").unwrap().to_owned()
}

/// The authorizer of `AuthMode=token` with the key of events/env.local.json, over its events.
#[test]
fn the_authorizer_answers_every_authorizer_fixture() {
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(events_dir().join("env.local.json")).unwrap()).unwrap();
    let pem = settings["Parameters"]["REGISTRY_JWT_PUBLIC_KEY"].as_str().unwrap();
    let verifier = JwtVerifier::from_pem(pem.as_bytes(), &TokenRules::default()).unwrap();
    for expectation in expectations()["authorizer"].as_array().unwrap() {
        let file = expectation["event"].as_str().unwrap();
        let answer = authorizer_answer(&verifier, event(file));
        assert_eq!(answer["isAuthorized"], true, "{file}: the function answers refusals, Obsrv-style: {answer}");
        let context = answer["context"].as_object().unwrap();
        match (expectation.get("roles"), expectation.get("refused")) {
            (Some(roles), None) => {
                let passed: Value = serde_json::from_str(context["roles"].as_str().unwrap()).unwrap();
                assert_eq!(&passed, roles, "{file}: {answer}");
                assert!(!context.contains_key("refused"), "{file}: {answer}");
            }
            (None, Some(refused)) => {
                assert_eq!(&context["refused"], refused, "{file}: {answer}");
                assert!(!context.contains_key("roles"), "{file}: {answer}");
            }
            _ => panic!("{file}: an authorizer expectation has roles or refused"),
        }
    }
    // Without the key the authorizer would refuse every token it did not sign.
    let other = JwtVerifier::from_pem(UNRELATED_PUBLIC_KEY.as_bytes(), &TokenRules::default()).unwrap();
    let answer = authorizer_answer(&other, event("authorizer-console-token.json"));
    assert_eq!(answer["context"]["refused"], "Token verification failed or invalid token", "{answer}");
    let answer = authorizer_answer(&verifier, without_headers(event("authorizer-console-token.json")));
    assert_eq!(answer["context"]["refused"], "No token provided", "{answer}");
}

fn without_headers(mut event: Value) -> Value {
    event["headers"] = serde_json::json!({});
    event
}

/// The authorizer's answer to an event, as JSON.
fn authorizer_answer(verifier: &JwtVerifier, event: Value) -> Value {
    serde_json::to_value(lambda::authorizer::answer_json(verifier, event)).unwrap()
}

/// The audit-events function's answer to a stream event, as JSON.
async fn audit_answer(
    outbox: &dyn registry_shared::registry::AuditOutbox,
    sink: &dyn registry_shared::registry::AuditSink,
    stream: &Value,
) -> Value {
    let event = serde_json::from_value(stream.clone()).expect("a DynamoDB stream event");
    serde_json::to_value(lambda::audit_stream::handle_stream(outbox, sink, &event).await).unwrap()
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
        async move {
            lambda::s3_uploads::handle_s3_event(&registrar, &*archives, &bucket, "incoming/", payload).await.unwrap()
        }
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

/// The gc-archives function over its schedule fixtures, as test-lambda runs them: after a
/// registration (whose archive stays), with the expectations' orphans in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_answers_every_schedule_fixture() {
    use lambda::gc_schedule::{Collector, handle_schedule};
    let Some(sdk) = stand_in().await else { return };
    let rows = Arc::new(DynamoRowStore::new(&sdk, unique_name("gc")));
    rows.create_table_if_missing().await.unwrap();
    let bucket = unique_name("gc");
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket.clone(), "").unwrap());
    archives.create_bucket_if_missing().await.unwrap();
    let registrar = Registrar::new(archives.clone(), rows.clone(), Limits::default());
    let staged = tempfile::NamedTempFile::new_in(registrar.staging_dir()).unwrap();
    std::fs::write(staged.path(), Package::single_tenant("http-poller-connector", "1.0.0").tar_gz()).unwrap();
    let upload =
        registry_shared::registry::StagedUpload { file: staged, file_name: "http-poller-connector.tar.gz".into() };
    let origin = registry_shared::registry::Origin::new("tester", "POST /v2/connector/register");
    let registered = registrar.register(upload, &origin).await.unwrap().stored_name.key();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let expectations = expectations();
    let orphans = expectations["orphans"].as_object().unwrap();
    for (key, content) in orphans {
        let body = content.as_str().unwrap().as_bytes().to_vec();
        s3.put_object().bucket(&bucket).key(key).body(body.into()).send().await.unwrap();
    }
    let present = |key: String| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move { s3.head_object().bucket(bucket).key(key).send().await.is_ok() }
    };

    // Whether a run removed the orphans: they are there until one did.
    let mut removed = false;
    for (run, expectation) in expectations["schedule"].as_array().unwrap().iter().enumerate() {
        let file = expectation["event"].as_str().unwrap();
        let env = &expectation["env"];
        let settings = lambda::Settings::from_lookup(|name| env[name].as_str().map(str::to_owned)).unwrap();
        let collector = Collector { archives: archives.clone(), rows: rows.clone(), grace: settings.gc_grace };
        let scheduled = serde_json::from_value(event(file)).expect("a scheduled event");
        let answer = serde_json::to_value(handle_schedule(&collector, &scheduled).await.unwrap()).unwrap();
        for (member, expected) in expectation["answer"].as_object().unwrap() {
            assert_eq!(&answer[member], expected, "{file}, run {run}: {member} in {answer}");
        }
        removed |= answer["archivesRemoved"].as_u64() > Some(0);
        for key in orphans.keys() {
            assert_eq!(present(key.clone()).await, !removed, "{file}, run {run}: {key}");
        }
    }
    assert!(present(registered.as_str().to_owned()).await, "the registered archive stays");
}

/// SQS on the stand-in, through its JSON protocol: where an EventBridge rule delivers the events
/// put, so that the test reads what EventBridge was given.
struct Queue {
    http: reqwest::Client,
    endpoint: String,
    url: String,
}

impl Queue {
    async fn call(http: &reqwest::Client, endpoint: &str, action: &str, body: Value) -> Value {
        let answer = http
            .post(endpoint)
            .header("X-Amz-Target", format!("AmazonSQS.{action}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "SQS {action}: {}", answer.status());
        let text = answer.text().await.unwrap();
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    async fn create(endpoint: &str, name: &str) -> (Self, String) {
        let http = reqwest::Client::new();
        let created = Self::call(&http, endpoint, "CreateQueue", serde_json::json!({ "QueueName": name })).await;
        let url = created["QueueUrl"].as_str().unwrap().to_owned();
        let attributes = serde_json::json!({ "QueueUrl": url, "AttributeNames": ["QueueArn"] });
        let arn = Self::call(&http, endpoint, "GetQueueAttributes", attributes).await;
        let arn = arn["Attributes"]["QueueArn"].as_str().unwrap().to_owned();
        (Self { http, endpoint: endpoint.to_owned(), url }, arn)
    }

    async fn received(&self) -> Vec<Value> {
        let body = serde_json::json!({ "QueueUrl": self.url, "MaxNumberOfMessages": 10 });
        let answer = Self::call(&self.http, &self.endpoint, "ReceiveMessage", body).await;
        answer["Messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| serde_json::from_str(m["Body"].as_str().unwrap()).unwrap())
            .collect()
    }
}

/// The audit-events function over its stream fixtures: each event is put to EventBridge (and
/// reaches a rule's target as the detail the registration committed), then removed from the
/// table; an event EventBridge does not take is reported as the batch's failure and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_function_puts_every_stream_fixture_s_event_to_eventbridge_and_removes_it() {
    use registry_shared::adapters::aws::EventBridgeSink;
    use registry_shared::registry::{AuditOutbox, AuditRecord};
    let Some(sdk) = stand_in().await else { return };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let outbox = DynamoRowStore::new(&sdk, unique_name("audit"));
    outbox.create_table_if_missing().await.unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let bus = unique_name("audit");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let (queue, queue_arn) = Queue::create(&endpoint, &unique_name("audit")).await;
    let pattern = serde_json::json!({ "source": ["connector-registry"] }).to_string();
    events.put_rule().name("registrations").event_bus_name(&bus).event_pattern(pattern).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(&queue_arn).build().unwrap();
    events.put_targets().rule("registrations").event_bus_name(&bus).targets(target).send().await.unwrap();

    for expectation in expectations()["audit"].as_array().unwrap() {
        let file = expectation["event"].as_str().unwrap();
        let stream = event(file);
        // The outbox items the stream names, in the table as a registration committed them.
        let mut committed = Vec::new();
        for record in stream["Records"].as_array().unwrap() {
            let image = &record["dynamodb"]["NewImage"];
            let mut put = dynamodb.put_item().table_name(outbox.table());
            for (name, value) in image.as_object().unwrap() {
                put = put.item(name, aws_sdk_dynamodb::types::AttributeValue::S(value["S"].as_str().unwrap().into()));
            }
            put.send().await.unwrap();
            committed.push(AuditRecord::from_json(image["event"]["S"].as_str().unwrap()).unwrap());
        }
        assert_eq!(outbox.pending(100).await.unwrap(), committed, "{file}");

        // EventBridge down (a bus that is not there): nothing is lost, the batch is retried.
        let nowhere = EventBridgeSink::new(&sdk, unique_name("missing"));
        let answer = audit_answer(&outbox, &nowhere, &stream).await;
        let first = &stream["Records"][0]["dynamodb"]["SequenceNumber"];
        assert_eq!(answer["batchItemFailures"], serde_json::json!([{ "itemIdentifier": first }]), "{file}");
        assert_eq!(outbox.pending(100).await.unwrap(), committed, "{file}: undelivered events stay");

        let sink = EventBridgeSink::new(&sdk, &bus);
        let answer = audit_answer(&outbox, &sink, &stream).await;
        assert_eq!(answer, serde_json::json!({ "batchItemFailures": [] }), "{file}");
        assert!(outbox.pending(100).await.unwrap().is_empty(), "{file}: delivered events leave the table");
        let received = queue.received().await;
        let ids: Vec<&str> = received.iter().map(|e| e["detail"]["event_id"].as_str().unwrap()).collect();
        let expected: Vec<&str> =
            expectation["delivered"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ids, expected, "{file}");
        for (event, record) in received.iter().zip(&committed) {
            assert_eq!(event["source"], "connector-registry", "{file}");
            assert_eq!(event["detail-type"], "Connector registered", "{file}");
            assert_eq!(
                event["detail"],
                serde_json::to_value(&record.detail).unwrap(),
                "{file}: the detail as committed"
            );
        }
    }
}
