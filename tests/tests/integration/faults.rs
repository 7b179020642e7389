//! Fault injection: every call along register, read and list fails in turn, on both backends.
//! After each failure the registry is as it was (or, when the failure hid a commit, as after
//! it), the client got a 503 with a generic message, and the retried request succeeds.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::Body;
use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore};
use registry_shared::adapters::embedded::open_stores;
use registry_shared::api::{self, RegisterState};
use registry_shared::distribution::Limits;
use registry_shared::domain::{Status, Timestamp};
use registry_shared::registry::{
    ARCHIVE_PREFIX, ArchiveStore, Catalog, ListQuery, Registrar, RowStore, StoredName, StoredObject, gc,
};
use registry_shared::test_support::aws::{stand_in, unique_name};
use registry_shared::test_support::faults::{Fault, FaultPlan, FaultyArchives, FaultyRows, faulty_sdk_config};
use registry_tests::{BackendKind, MSGID, Package, list_body};
use serde_json::{Value, json};

struct Faulty {
    plan: Arc<FaultPlan>,
    register: RegisterState,
    catalog: Catalog,
    /// The stores themselves, past the faults, for checking what they hold.
    archives: Arc<dyn ArchiveStore>,
    rows: Arc<dyn RowStore>,
    _data: Option<tempfile::TempDir>,
}

type Archives = Arc<dyn ArchiveStore>;
type Rows = Arc<dyn RowStore>;

/// The stores behind faults: on the embedded backend each store call fails in turn; on AWS each
/// HTTP call the SDK clients make (every DynamoDB and S3 request), a finer grain.
async fn faulty(kind: BackendKind) -> Option<Faulty> {
    let plan = Arc::new(FaultPlan::default());
    let (archives, rows, faulty_archives, faulty_rows, data): (Archives, Rows, Archives, Rows, _) = match kind {
        BackendKind::Embedded => {
            let data = tempfile::tempdir().unwrap();
            let (archives, rows) = open_stores(data.path(), "http://127.0.0.1:3000").unwrap();
            let faulty_rows = Arc::new(FaultyRows { inner: rows.clone(), gate: plan.clone() });
            let faulty_archives = Arc::new(FaultyArchives { inner: archives.clone(), gate: plan.clone() });
            (archives, rows, faulty_archives, faulty_rows, Some(data))
        }
        BackendKind::Aws => {
            let sdk = stand_in().await?;
            let (table, bucket) = (unique_name("faults"), unique_name("faults"));
            let rows = DynamoRowStore::new(&sdk, &table);
            rows.create_table_if_missing().await.unwrap();
            let archives = S3ArchiveStore::new(&sdk, &bucket, "").unwrap();
            archives.create_bucket_if_missing().await.unwrap();
            let faulty_sdk = faulty_sdk_config(&sdk, plan.clone());
            let faulty_rows = Arc::new(DynamoRowStore::new(&faulty_sdk, &table));
            let faulty_archives = Arc::new(S3ArchiveStore::new(&faulty_sdk, &bucket, "").unwrap());
            (Arc::new(archives), Arc::new(rows), faulty_archives, faulty_rows, None)
        }
    };
    Some(Faulty {
        plan,
        register: RegisterState {
            registrar: Registrar::new(faulty_archives, faulty_rows.clone(), Limits::default()),
            max_body_bytes: 64 << 20,
        },
        catalog: Catalog::new(faulty_rows),
        archives,
        rows,
        _data: data,
    })
}

fn multipart(version: &str) -> lambda_http::Request {
    let archive = Package::single_tenant("kafka-connector", version).tar_gz();
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k.tar.gz\"\r\n\r\n".to_vec();
    body.extend_from_slice(&archive);
    body.extend_from_slice(b"\r\n--B--\r\n");
    http::Request::builder()
        .method("POST")
        .uri("/v2/connector/register")
        .header("content-type", "multipart/form-data; boundary=B")
        .body(Body::Binary(body))
        .unwrap()
}

fn answer(response: api::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, serde_json::from_slice(response.body().as_ref()).unwrap())
}

/// What the registry holds for the connector: (version, status) pairs, and whether every row's
/// archive is in the archive store.
async fn holdings(faulty: &Faulty) -> (Vec<(String, Status)>, bool) {
    let listed = faulty.rows.list(&ListQuery::default()).await.unwrap().rows;
    let mut archives_present = true;
    let mut holdings = Vec::new();
    for listed in &listed {
        let row = faulty.rows.get(listed.id.as_str(), listed.status).await.unwrap().expect("a listed row reads back");
        let key = StoredName::parse(&row.source_url).unwrap().key();
        archives_present &= faulty.archives.exists(&key).await.unwrap();
        holdings.push((row.version.to_string(), row.status));
    }
    (holdings, archives_present)
}

fn live(holdings: &[(String, Status)]) -> Vec<&str> {
    holdings.iter().filter(|(_, s)| *s == Status::Live).map(|(v, _)| v.as_str()).collect()
}

async fn every_failing_call_along_register_leaves_the_registry_whole(kind: BackendKind) {
    let Some(faulty) = faulty(kind).await else { return };
    assert_eq!(answer(api::register(&faulty.register, multipart("1.0.0")).await).0, 200);
    let mut live_version = "1.0.0".to_owned();
    let mut attempt = 0;
    for fault in [Fault::Before, Fault::After] {
        for n in 1.. {
            attempt += 1;
            let version = format!("2.{attempt}.0");
            faulty.plan.arm(n, fault);
            let (status, body) = answer(api::register(&faulty.register, multipart(&version)).await);
            let calls = faulty.plan.calls();
            faulty.plan.disarm();
            if calls < n {
                assert_eq!(status, 200, "{body}");
                live_version = version;
                break;
            }
            assert_eq!(status, 503, "{fault:?} at call {n}: {body}");
            assert_eq!(body["error"]["code"], "FAILED_TO_REGISTER_CONNECTOR");
            assert_eq!(body["error"]["message"], "The registry is temporarily unavailable, please retry");
            let (rows, archives_present) = holdings(&faulty).await;
            assert!(archives_present, "{fault:?} at call {n}: every row's archive is there");
            let now_live = live(&rows);
            match fault {
                Fault::Before => assert_eq!(now_live, [live_version.as_str()], "call {n}: nothing changed"),
                // A failure that hid a commit leaves the new version registered, and only it.
                Fault::After => {
                    assert!(now_live == [live_version.as_str()] || now_live == [version.as_str()], "{now_live:?}")
                }
            }
            if fault == Fault::Before {
                assert!(!rows.iter().any(|(v, _)| *v == version), "call {n}: no row of the failed registration");
            }
            // The retried request succeeds.
            let (status, body) = answer(api::register(&faulty.register, multipart(&version)).await);
            assert_eq!(status, 200, "retry after a fault at call {n}: {body}");
            assert_eq!(live(&holdings(&faulty).await.0), [version.as_str()]);
            live_version = version;
        }
    }
}

fn by_reference(name: &StoredName) -> lambda_http::Request {
    let body = json!({"id": "api.connector.register", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
        "params": {"msgid": MSGID}, "request": {"relative_path": name.as_str()}});
    http::Request::builder()
        .method("POST")
        .uri("/v2/connector/register")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap()
}

/// Register by reference reads the upload, copies it under the archives, commits the rows and
/// removes the upload: whichever of those calls fails, the retry registers the very same archive.
async fn every_failing_call_along_register_by_reference_is_retried_to_the_same_archive(kind: BackendKind) {
    let Some(faulty) = faulty(kind).await else { return };
    for fault in [Fault::Before, Fault::After] {
        for n in 1.. {
            let version = format!("3.{n}.{}", fault as u8);
            let name = StoredName::generate("k.tar.gz");
            let staged = tempfile::NamedTempFile::new_in(faulty.archives.staging_dir()).unwrap();
            let bytes = Package::single_tenant("kafka-connector", &version).tar_gz();
            std::fs::write(staged.path(), &bytes).unwrap();
            faulty.archives.put(&name.upload_key(), staged.path()).await.unwrap();

            faulty.plan.arm(n, fault);
            let (status, body) = answer(api::register(&faulty.register, by_reference(&name)).await);
            let calls = faulty.plan.calls();
            faulty.plan.disarm();
            if calls < n {
                assert_eq!(status, 200, "{body}");
                break;
            }
            // The failure may come after the rows were committed (removing the upload is the
            // last call, and it failing is only logged).
            assert!(status == 503 || status == 200, "{fault:?} at call {n}: {body}");
            let (status, body) = answer(api::register(&faulty.register, by_reference(&name)).await);
            assert_eq!(status, 200, "retry after a fault at call {n}: {body}");
            let (holdings, archives_present) = holdings(&faulty).await;
            assert!(archives_present, "{fault:?} at call {n}: every row's archive is there");
            assert_eq!(live(&holdings), [version.as_str()]);
            let mut stored = Vec::new();
            let mut file = faulty.archives.open(&name.key()).await.unwrap().expect("the archive");
            std::io::Seek::rewind(&mut file).unwrap();
            std::io::Read::read_to_end(&mut file, &mut stored).unwrap();
            assert_eq!(stored, bytes, "the archive is the upload");
            assert!(!faulty.archives.exists(&name.upload_key()).await.unwrap(), "the upload is removed");
        }
    }
}

async fn failing_reads_and_lists_answer_503_and_recover(kind: BackendKind) {
    let Some(faulty) = faulty(kind).await else { return };
    assert_eq!(answer(api::register(&faulty.register, multipart("1.0.0")).await).0, 200);
    let read = || http::Request::builder().uri("/v2/connectors/read/kafka-connector-1.0.0").body(Body::Empty).unwrap();
    let list = || {
        http::Request::builder()
            .method("POST")
            .uri("/v2/connectors/list")
            .body(Body::Text(list_body(json!({})).to_string()))
            .unwrap()
    };
    for fault in [Fault::Before, Fault::After] {
        faulty.plan.arm(1, fault);
        let (status, body) = answer(api::read(&faulty.catalog, read()).await);
        assert_eq!((status, body["error"]["code"].clone()), (503, json!("SERVICE_UNAVAILABLE")), "{body}");
        assert_eq!(body["responseCode"], "SERVICE_UNAVAILABLE");
        faulty.plan.arm(1, fault);
        let (status, body) = answer(api::list(&faulty.catalog, list()).await);
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["params"]["msgid"], MSGID);
        assert!(!body.to_string().contains("injected"), "no internals reach the client");
        faulty.plan.disarm();
        assert_eq!(answer(api::read(&faulty.catalog, read()).await).0, 200);
        assert_eq!(answer(api::list(&faulty.catalog, list()).await).1["result"]["count"], 1);
    }
}

/// The keys under the archives' prefix, in order.
async fn stored_archives(faulty: &Faulty) -> Vec<String> {
    let mut keys: Vec<String> = faulty
        .archives
        .list(&format!("{ARCHIVE_PREFIX}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.as_str().to_owned())
        .collect();
    keys.sort();
    keys
}

fn keys(objects: &[StoredObject]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

/// A commit that fails before it reaches the store answers 503 and keeps the archive it stored
/// (the registrar cannot tell it from a commit whose answer was lost): an archive no row
/// references. The collection removes exactly that orphan, and an upload never registered, once
/// they are older than the grace period, and nothing a row references; a dry run removes nothing.
async fn the_archive_a_failed_commit_leaves_is_collected_and_nothing_else(kind: BackendKind) {
    let Some(faulty) = faulty(kind).await else { return };
    assert_eq!(answer(api::register(&faulty.register, multipart("1.0.0")).await).0, 200);
    // The calls of a registration that goes through: its last is the commit's write.
    faulty.plan.arm(usize::MAX, Fault::Before);
    assert_eq!(answer(api::register(&faulty.register, multipart("1.1.0")).await).0, 200);
    let calls = faulty.plan.calls();
    faulty.plan.disarm();
    let referenced = stored_archives(&faulty).await;
    assert_eq!(referenced.len(), 2);

    faulty.plan.arm(calls, Fault::Before);
    let (status, body) = answer(api::register(&faulty.register, multipart("2.0.0")).await);
    faulty.plan.disarm();
    assert_eq!(status, 503, "{body}");
    let (rows, archives_present) = holdings(&faulty).await;
    assert!(archives_present && !rows.iter().any(|(v, _)| v == "2.0.0"), "no row of 2.0.0: {rows:?}");
    let orphan: Vec<String> = stored_archives(&faulty).await.into_iter().filter(|k| !referenced.contains(k)).collect();
    assert_eq!(orphan.len(), 1, "the failed registration's archive is kept");
    let upload = StoredName::generate("never-registered.tar.gz").upload_key();
    let staged = tempfile::NamedTempFile::new_in(faulty.archives.staging_dir()).unwrap();
    std::fs::write(staged.path(), Package::single_tenant("kafka-connector", "3.0.0").tar_gz()).unwrap();
    faulty.archives.put(&upload, staged.path()).await.unwrap();

    let (archives, rows) = (&*faulty.archives, &*faulty.rows);
    let recent = gc::collect(archives, rows, gc::DEFAULT_GRACE, Timestamp::now(), false).await.unwrap();
    assert!(recent.archives.is_empty() && recent.uploads.is_empty(), "nothing a day old yet: {recent:?}");
    assert_eq!((recent.referenced, recent.recent), (2, 2));

    let dry = gc::collect(archives, rows, Duration::ZERO, Timestamp::now(), true).await.unwrap();
    assert_eq!(keys(&dry.archives), [orphan[0].as_str()]);
    assert_eq!(keys(&dry.uploads), [upload.as_str()]);
    assert_eq!(stored_archives(&faulty).await.len(), 3, "a dry run removes nothing");
    assert!(faulty.archives.exists(&upload).await.unwrap());

    let done = gc::collect(archives, rows, Duration::ZERO, Timestamp::now(), false).await.unwrap();
    assert_eq!((keys(&done.archives), keys(&done.uploads)), (keys(&dry.archives), keys(&dry.uploads)));
    assert_eq!(stored_archives(&faulty).await, referenced, "exactly the orphan went");
    assert!(!faulty.archives.exists(&upload).await.unwrap(), "the upload went");
    let (rows, archives_present) = holdings(&faulty).await;
    assert!(archives_present, "every row's archive is there");
    assert_eq!(live(&rows), ["1.1.0"]);

    // The registry is whole: the failed registration, retried, goes through.
    assert_eq!(answer(api::register(&faulty.register, multipart("2.0.0")).await).0, 200);
    assert_eq!(live(&holdings(&faulty).await.0), ["2.0.0"]);
}

registry_tests::on_both_backends!(
    every_failing_call_along_register_leaves_the_registry_whole,
    every_failing_call_along_register_by_reference_is_retried_to_the_same_archive,
    failing_reads_and_lists_answer_503_and_recover,
    the_archive_a_failed_commit_leaves_is_collected_and_nothing_else,
);

/// A DynamoDB that accepts connections and never answers: reads give a 503 within the SDK's
/// configured timeouts, never a hung request.
#[tokio::test]
async fn a_store_that_never_answers_gives_503_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let sdk = registry_shared::test_support::aws::config_for_endpoint(&endpoint).await;
    let catalog = Catalog::new(Arc::new(DynamoRowStore::new(&sdk, "never-answers")));
    let started = std::time::Instant::now();
    let request = http::Request::builder().uri("/v2/connectors/read/kafka-connector-1.0.0").body(Body::Empty).unwrap();
    let (status, body) = answer(api::read(&catalog, request).await);
    let waited = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    let limit = registry_shared::adapters::aws::OPERATION_TIMEOUT + std::time::Duration::from_secs(3);
    assert!(waited <= limit, "answered after {waited:?}, more than the configured {limit:?}");
}
