//! Helpers for the black-box tests: a registry server spawned on a free port over a fresh data
//! folder, and a client that speaks its HTTP API.

use std::net::SocketAddr;
use std::path::Path;

use registry_server::{Backend, DEFAULT_MAX_UPLOAD_BYTES, RunningServer, ServerConfig};
use registry_shared::distribution::Limits;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

pub use registry_shared::test_support::{self, Entry, Package};

pub mod obsrv;

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub config: ServerConfig,
    server: Option<RunningServer>,
    /// The embedded backend's data folder, removed with the app.
    data: Option<tempfile::TempDir>,
    /// The AWS backend's bucket, for looking at stored archives.
    s3: Option<aws_sdk_s3::Client>,
}

/// Which backend a black-box test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Embedded,
    Aws,
}

/// Declares each scenario `async fn name(kind: BackendKind)` as two tests, `embedded::name` and
/// `aws::name`, so every behaviour is checked on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::BackendKind::Embedded).await
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if $crate::aws_available().await {
                        super::$name($crate::BackendKind::Aws).await
                    }
                }
            )*
        }
    };
}

/// Whether the S3/DynamoDB stand-in is configured (see `test_support::aws::stand_in`).
pub async fn aws_available() -> bool {
    registry_shared::test_support::aws::stand_in().await.is_some()
}

/// A response: its status, its body parsed with key order kept, and the raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn spawn(kind: BackendKind) -> Self {
        Self::spawn_with(kind, |_| {}).await
    }

    /// Spawns on a fresh store (a new data folder, or a new table and bucket), with a
    /// configuration adjusted by `adjust` (limits, upload size).
    pub async fn spawn_with(kind: BackendKind, adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let (backend, data, s3) = match kind {
            BackendKind::Embedded => {
                let data = tempfile::tempdir().expect("temp dir");
                (Backend::Embedded { data_dir: data.path().to_owned() }, Some(data), None)
            }
            BackendKind::Aws => {
                let sdk = registry_shared::test_support::aws::stand_in().await.expect("the AWS stand-in");
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build(),
                );
                let backend = Backend::Aws {
                    table: test_support::aws::unique_name("registry"),
                    bucket: test_support::aws::unique_name("registry"),
                    key_prefix: String::new(),
                    create_missing: true,
                    max_store_requests: registry_server::DEFAULT_MAX_STORE_REQUESTS,
                };
                (backend, None, Some(s3))
            }
        };
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            limits: Limits::default(),
            auth: registry_shared::auth::Authenticator::Open,
            url_expiry: std::time::Duration::from_secs(600),
            public_url: None,
            http: registry_server::HttpLimits::default(),
            audit_events: None,
            obsrv_postgres: None,
            obsrv_archives: None,
            versions: registry_shared::domain::Versions::Immutable,
        };
        adjust(&mut config);
        let server = RunningServer::start(config.clone()).await.expect("server starts");
        Self {
            base_url: format!("http://{}", server.addr),
            client: reqwest::Client::new(),
            config,
            server: Some(server),
            data,
            s3,
        }
    }

    /// Stops the server (letting requests in flight finish) and starts it again on the same data.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("clean stop");
        }
        let server = RunningServer::start(self.config.clone()).await.expect("server restarts");
        self.base_url = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    /// The server's row store, read and written directly (behind its HTTP API and access control).
    pub fn rows(&self) -> std::sync::Arc<dyn registry_shared::registry::RowStore> {
        self.server.as_ref().expect("a running server").catalog().rows().clone()
    }

    /// The server's archive store, read and written directly.
    pub fn archives(&self) -> std::sync::Arc<dyn registry_shared::registry::ArchiveStore> {
        self.server.as_ref().expect("a running server").archives().clone()
    }

    /// The archives the store holds: stored name and content, by name.
    pub async fn stored_archives(&self) -> Vec<(String, Vec<u8>)> {
        let mut archives = Vec::new();
        match &self.config.backend {
            Backend::Embedded { data_dir } => {
                let folder = data_dir.join("archives/connector-registry");
                for entry in std::fs::read_dir(folder).into_iter().flatten() {
                    let path = entry.expect("entry").path();
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    archives.push((name, std::fs::read(&path).expect("archive")));
                }
            }
            Backend::Aws { bucket, .. } => {
                let s3 = self.s3.as_ref().expect("S3 client");
                let listed = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix("connector-registry/")
                    .send()
                    .await
                    .expect("list objects");
                for object in listed.contents() {
                    let key = object.key().unwrap().to_owned();
                    let body = s3.get_object().bucket(bucket).key(&key).send().await.expect("get object").body;
                    let bytes = body.collect().await.expect("object body").into_bytes().to_vec();
                    let name = key.strip_prefix("connector-registry/").expect("key prefix").to_owned();
                    archives.push((name, bytes));
                }
            }
        }
        archives.sort();
        archives
    }

    /// The data folder of an embedded backend.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data.as_ref().map(|d| d.path())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    /// Registers an archive as one multipart file part named `file`.
    pub async fn register(&self, file_name: &str, bytes: Vec<u8>) -> Answer {
        let form = Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
        self.register_form(form).await
    }

    pub async fn register_form(&self, form: Form) -> Answer {
        let response = self.client.post(self.url("/v2/connector/register")).multipart(form).send().await.expect("send");
        Self::answer(response).await
    }

    pub async fn read(&self, path_and_query: &str) -> Answer {
        let response =
            self.client.get(self.url(&format!("/v2/connectors/read/{path_and_query}"))).send().await.expect("send");
        Self::answer(response).await
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        let response = self.client.post(self.url(path)).json(&body).send().await.expect("send");
        Self::answer(response).await
    }

    /// Asks `POST /v2/files/generate-url` for URLs.
    pub async fn generate_urls(&self, access: &str, files: &[&str]) -> Answer {
        let body = json!({"id": "api.files.generate-url", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
            "params": {"msgid": MSGID}, "request": {"files": files, "access": access, "type": "connector"}});
        self.post_json("/v2/files/generate-url", body).await
    }

    /// Registers an uploaded archive by its stored name.
    pub async fn register_by_reference(&self, relative_path: &str) -> Answer {
        let body = json!({"id": "api.connector.register", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00",
            "params": {"msgid": MSGID}, "request": {"relative_path": relative_path}});
        self.post_json("/v2/connector/register", body).await
    }

    /// A status transition of the row `id` to `status` (`Live`, `Retire`, `Delete`).
    pub async fn transition(&self, id: &str, status: &str, reason: Option<&str>) -> Answer {
        self.post_json("/v2/connectors/status-transition", transition_body(id, status, reason)).await
    }

    /// Lists with a well-formed envelope around `request`.
    pub async fn list(&self, request: Value) -> Answer {
        self.list_raw(list_body(request).to_string()).await
    }

    pub async fn list_raw(&self, body: String) -> Answer {
        let response = self
            .client
            .post(self.url("/v2/connectors/list"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        Self::answer(response).await
    }

    /// Every row straight from the store, past any access control.
    pub async fn all_rows_unchecked(&self) -> Vec<String> {
        let server = self.server.as_ref().expect("running");
        let rows = server.catalog().list(&Default::default()).await.expect("list");
        rows.rows.into_iter().map(|r| r.id.as_str().to_owned()).collect()
    }

    /// The ids and statuses of every row, in list order.
    pub async fn all_rows(&self) -> Vec<(String, String)> {
        let answer = self.list(json!({})).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.body["result"]["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r["status"].as_str().unwrap().to_owned()))
            .collect()
    }
}

pub const MSGID: &str = "4a7f14c3-d61e-4d4f-be78-181834eeff6d";

/// A status-transition request in its envelope.
pub fn transition_body(id: &str, status: &str, reason: Option<&str>) -> Value {
    let mut request = json!({"id": id, "status": status});
    if let Some(reason) = reason {
        request["reason"] = json!(reason);
    }
    json!({"id": "api.connectors.status-transition", "ver": "v2", "ts": "2026-12-05T10:00:00+00:00",
        "params": {"msgid": MSGID}, "request": request})
}

pub fn list_body(request: Value) -> Value {
    json!({"id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30", "params": {"msgid": MSGID}, "request": request})
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<&str> {
    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

/// Checks the parts of the envelope every answer shares.
pub fn assert_envelope(answer: &Answer, api_id: &str, status: &str) {
    let body = &answer.body;
    assert_eq!(body["id"], api_id, "{}", answer.text);
    assert_eq!(body["ver"], "v2");
    assert_eq!(body["params"]["status"], status);
    let ts = body["ts"].as_str().expect("ts");
    assert!(
        ts.len() == 25 && ts.ends_with("+00:00") && chrono_like(ts),
        "ts {ts:?} is not seconds-precision UTC with +00:00"
    );
    let resmsgid = body["params"]["resmsgid"].as_str().expect("resmsgid");
    assert!(is_uuid_v4(resmsgid), "resmsgid {resmsgid:?}");
}

fn chrono_like(ts: &str) -> bool {
    let b = ts.as_bytes();
    b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':'
}

pub fn is_uuid_v4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && parts[2].starts_with('4')
}

/// An ISO-8601 UTC timestamp with milliseconds and `Z`, as rows carry them.
pub fn is_row_timestamp(value: &Value) -> bool {
    value.as_str().is_some_and(|t| t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.' && chrono_like(t))
}
