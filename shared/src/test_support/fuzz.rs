//! The bodies of the fuzz targets (`fuzz/`), and their seeds. They live here so that the
//! regression test replays crash inputs through exactly the code the fuzzer ran.
//!
//! Each function panics when the registry breaks a promise for the input: a panic inside the
//! code under test, or an answer that a client must never get (a 5xx, a body that is not the
//! Obsrv envelope, rows inconsistent with the package).

use std::io::Cursor;
use std::time::Duration;

use lambda_http::Body;
use serde_json::{Value, json};

use super::{Entry, ICON_SVG, Package, gzip, gzip_bomb, multi_tenant_metadata, single_tenant_metadata};
use crate::api::{self, AppState, FilesState, RegisterState};
use crate::auth::Authenticator;
use crate::distribution::reader::ReadError;
use crate::distribution::{Limits, Metadata, build_rows, read_distribution};
use crate::domain::Timestamp;
use crate::registry::{Catalog, Registrar};

/// Limits small enough that one input cannot take the fuzzer's time; the caps on headers, paths
/// and the zip directory are the registry's own, so the fuzzer's memory bound checks them.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_archive_bytes: 4 << 20,
        max_uncompressed_bytes: 16 << 20,
        max_entries: 2_000,
        max_metadata_bytes: 64 << 10,
        max_ui_config_bytes: 256 << 10,
        max_icon_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// The archive reader and row construction over arbitrary bytes.
pub fn distribution(data: &[u8]) {
    match read_distribution(&mut Cursor::new(data), &fuzz_limits()) {
        Ok(distribution) => {
            let rows = build_rows(&distribution, "fuzz.tar_000000.gz", Timestamp::now());
            assert_eq!(rows.len(), distribution.metadata.connectors.len());
            for row in &rows {
                let id = row.id.as_str();
                assert!(id.ends_with(&format!("-{}", distribution.metadata.version)), "{id}");
            }
        }
        Err(ReadError::Invalid(e)) => assert!(!e.to_string().is_empty()),
        Err(ReadError::Io(e)) => panic!("reading from memory cannot fail: {e}"),
    }
}

/// `metadata.json` validation over arbitrary bytes.
pub fn metadata(data: &[u8]) {
    if let Ok(metadata) = Metadata::parse(data) {
        assert!(!metadata.connectors.is_empty());
        let folder = metadata.source_folder();
        assert!(!folder.contains('/') && folder != ".." && folder != ".", "{folder:?}");
        let _ = metadata.icon_paths();
    }
}

/// The request parsers: every route's handler, behind the router, over an embedded store.
pub struct ApiHarness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    _data: tempfile::TempDir,
}

impl ApiHarness {
    pub fn new() -> Self {
        let data = tempfile::tempdir().expect("temporary folder");
        let (archives, rows) =
            crate::adapters::embedded::open_stores(data.path(), "http://127.0.0.1:3000").expect("embedded stores");
        let state = AppState {
            register: RegisterState {
                registrar: Registrar::new(archives.clone(), rows.clone(), fuzz_limits()),
                max_body_bytes: 4 << 20,
            },
            catalog: Catalog::new(rows),
            files: FilesState { archives, expiry: Duration::from_secs(600) },
            auth: Authenticator::Open,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { runtime, state, _data: data }
    }

    /// `data` is a request written like HTTP/1.1 without the version: `METHOD TARGET`, header
    /// lines, a blank line, the body. Inputs that are not even that are skipped.
    pub fn request(&self, data: &[u8]) {
        let Some(request) = parse_request(data) else { return };
        let response = self.runtime.block_on(api::handle(&self.state, request));
        let status = response.status();
        assert!(!status.is_server_error(), "{status} for {:?}", String::from_utf8_lossy(data));
        let body = match response.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => panic!("an answer without a body"),
        };
        let envelope: Value = serde_json::from_slice(body).expect("the answer is JSON");
        for field in ["id", "ver", "ts", "params", "responseCode"] {
            assert!(envelope.get(field).is_some(), "no {field} in {envelope}");
        }
    }
}

impl Default for ApiHarness {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_request(data: &[u8]) -> Option<lambda_http::Request> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(Body::Binary(body.to_vec())).ok()
}

/// Starting inputs for each target: the shapes of real packages and requests, and the broken
/// ones the tests know about, so the fuzzer starts from the interesting paths.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let single = Package::single_tenant("kafka-connector", "1.0.0");
    let multi = Package::multi_tenant("object-store-connector", "0.1.0", &["aws-s3-connector", "azure-blob-connector"]);
    let top = "kafka-connector-1.0.0";
    let archives: Vec<(&str, Vec<u8>)> = vec![
        ("single.tar.gz", single.tar_gz()),
        ("single.tar", single.tar()),
        ("single.zip", single.zip()),
        ("multi.tar.gz", multi.tar_gz()),
        ("multi.zip", multi.zip()),
        ("traversal.tar.gz", single.clone().file("../escape.txt", b"x").tar_gz()),
        ("absolute.tar", single.clone().file("/etc/passwd", b"x").tar()),
        (
            "symlink.tar.gz",
            single.clone().entry(&format!("{top}/icon.svg"), Entry::Symlink("/etc/passwd".into())).tar_gz(),
        ),
        ("hardlink.tar", single.clone().entry(&format!("{top}/lib.jar"), Entry::HardLink("../x".into())).tar()),
        ("fifo.tar", single.clone().entry(&format!("{top}/pipe"), Entry::Fifo).tar()),
        ("no-metadata.tar.gz", single.clone().without("metadata.json").tar_gz()),
        ("bad-metadata.zip", single.clone().replace("metadata.json", b"{not json").zip()),
        ("bad-ui-config.tar.gz", single.clone().replace("ui-config.json", b"[]").tar_gz()),
        ("bomb.tar.gz", gzip_bomb(top, 64 << 20)),
        ("truncated.tar.gz", single.tar_gz()[..200].to_vec()),
        ("double-gzip.tar.gz", gzip(&single.tar_gz())),
    ];
    seeds.extend(archives.into_iter().map(|(name, bytes)| ("distribution", name.to_owned(), bytes)));

    let documents = [
        ("single.json", single_tenant_metadata("kafka-connector", "1.0.0")),
        (
            "multi.json",
            multi_tenant_metadata("object-store-connector", "0.1.0", &["aws-s3-connector", "gcs-connector"]),
        ),
        ("empty.json", json!({})),
        ("array.json", json!([1, 2])),
    ];
    seeds.extend(
        documents.into_iter().map(|(name, value)| ("metadata", name.to_owned(), value.to_string().into_bytes())),
    );

    let list = |request: Value| {
        json!({"id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30",
               "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"}, "request": request})
        .to_string()
    };
    let mut multipart = b"POST /v2/connector/register\ncontent-type: multipart/form-data; boundary=B\n\n--B\r\n\
        Content-Disposition: form-data; name=\"file\"; filename=\"k.tar.gz\"\r\n\r\n"
        .to_vec();
    multipart.extend_from_slice(&single.tar_gz());
    multipart.extend_from_slice(b"\r\n--B--\r\n");
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("read", b"GET /v2/connectors/read/kafka-connector-1.0.0?mode=edit\n\n".to_vec()),
        ("list", format!("POST /v2/connectors/list\ncontent-type: application/json\n\n{}", list(json!({"filters": {"status": ["Live"], "category": ["stream"]}, "limit": 10, "offset": 0}))).into_bytes()),
        ("list-empty", format!("POST /v2/connectors/list\ncontent-type: application/json\n\n{}", list(json!({}))).into_bytes()),
        ("generate-url", format!("POST /v2/files/generate-url\ncontent-type: application/json\n\n{}", json!({"id": "api.files.generate-url", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00", "params": {"msgid": "m"}, "request": {"files": ["k.tar.gz"], "access": "write", "type": "connector"}})).into_bytes()),
        ("register-by-reference", format!("POST /v2/connector/register\ncontent-type: application/json\n\n{}", json!({"id": "api.connector.register", "request": {"relative_path": "kafka-connector.tar_1a2b3c.gz"}})).into_bytes()),
        ("register-multipart", multipart),
        ("icon", format!("GET /v2/connectors/read/x\n\n{}", String::from_utf8_lossy(ICON_SVG)).into_bytes()),
    ];
    seeds.extend(requests.into_iter().map(|(name, bytes)| ("api_request", name.to_owned(), bytes)));
    seeds
}

/// Every seed and every committed crash input of `target`, for replaying in tests.
pub fn replay(target: &str, inputs: impl IntoIterator<Item = Vec<u8>>) {
    let harness = (target == "api_request").then(ApiHarness::new);
    for input in inputs {
        match target {
            "distribution" => distribution(&input),
            "metadata" => metadata(&input),
            "api_request" => harness.as_ref().expect("harness").request(&input),
            other => panic!("no fuzz target {other}"),
        }
    }
}
