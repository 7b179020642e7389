//! `registry-server publish` and `registry-server connector promote|retire|delete` as connector
//! authors and CI jobs run them: the binary against a server on this machine (embedded backend),
//! whose answers are read back over HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use registry_server::{Backend, DEFAULT_MAX_UPLOAD_BYTES, HttpLimits, RunningServer, ServerConfig};
use registry_shared::auth::{Authenticator, JwtVerifier, RolesClaim, TokenRules};
use registry_shared::distribution::Limits;
use registry_shared::registry::StoredName;
use registry_shared::test_support::Package;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};

/// A server on a fresh data folder, with its configuration adjusted.
struct Local {
    server: RunningServer,
    _data: tempfile::TempDir,
    files: tempfile::TempDir,
    http: reqwest::Client,
}

impl Local {
    async fn start(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            backend: Backend::Embedded { data_dir: data.path().to_owned() },
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            limits: Limits::default(),
            auth: Authenticator::Open,
            url_expiry: Duration::from_secs(600),
            public_url: None,
            http: HttpLimits::default(),
            audit_events: None,
            obsrv_postgres: None,
            obsrv_archives: None,
            versions: registry_shared::domain::Versions::Immutable,
        };
        adjust(&mut config);
        let server = RunningServer::start(config).await.expect("the server starts");
        Self { server, _data: data, files: tempfile::tempdir().unwrap(), http: reqwest::Client::new() }
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The package written to a file of its own.
    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `registry-server <args> --url <this server>`, with `env`.
    async fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.extend(["--url".to_owned(), self.url()]);
        run(args, env).await
    }

    async fn read(&self, id: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}/v2/connectors/read/{id}", self.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Every row, with its status, sorted.
    async fn rows(&self, token: Option<&str>) -> Vec<(String, String)> {
        let body = json!({"id": "api.connectors.list", "ver": "v2", "ts": "2026-01-01T00:00:00+00:00",
            "params": {"msgid": "m1"}, "request": {"filters": {"status": ["Draft", "InValidation", "Live", "Retired"]}}});
        let mut request = self.http.post(format!("{}/v2/connectors/list", self.url())).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let list: Value = request.send().await.unwrap().json().await.unwrap();
        let rows = list["result"]["data"].as_array().unwrap_or_else(|| panic!("a list: {list}")).iter();
        let mut rows: Vec<(String, String)> = rows
            .map(|row| (row["id"].as_str().unwrap().to_owned(), row["status"].as_str().unwrap().to_owned()))
            .collect();
        rows.sort();
        rows
    }

    /// The `error.message` the server answers to a multipart register of `bytes`.
    async fn register_refusal(&self, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("package.tar.gz");
        let form = reqwest::multipart::Form::new().part("file", part);
        let url = format!("{}/v2/connector/register", self.url());
        let answer: Value = self.http.post(url).multipart(form).send().await.unwrap().json().await.unwrap();
        answer["error"]["message"].as_str().unwrap_or_else(|| panic!("a refusal: {answer}")).to_owned()
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {self:?}"))
    }
}

/// The binary, with none of the client's settings from the environment but `env`.
async fn run(args: Vec<String>, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry-server"));
    command.args(&args);
    for name in ["REGISTRY_URL", "REGISTRY_TOKEN", "REGISTRY_MULTIPART_LIMIT"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("the binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Data that does not compress, so that an archive is as large as its files.
fn noise(bytes: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_archive_is_published_in_one_request_and_reads_back() {
    let local = Local::start(|_| {}).await;
    let single = local.archive("kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0").tar_gz());
    let published = local.cli(&["publish", path_arg(&single)], &[]).await;
    assert_eq!(published.code, Some(0), "{published:?}");
    assert_eq!(
        published.json(),
        json!({"message": "connector registered successfully.", "rows": ["kafka-connector-1.0.0"]})
    );
    assert!(published.stderr.contains("registering it in one request"), "{published:?}");
    let (status, read) = local.read("kafka-connector-1.0.0", None).await;
    assert_eq!((status, &read["result"]["status"]), (200, &json!("Live")), "{read}");

    // A zip declaring two connectors: both rows.
    let multi = Package::multi_tenant("object-store-connector", "0.1.0", &["s3-connector", "gcs-connector"]);
    let zip = local.archive("object-store.zip", &multi.zip());
    let published = local.cli(&["publish", path_arg(&zip)], &[]).await;
    assert_eq!(published.code, Some(0), "{published:?}");
    assert_eq!(published.json()["rows"], json!(["s3-connector-0.1.0", "gcs-connector-0.1.0"]));
    for id in ["s3-connector-0.1.0", "gcs-connector-0.1.0"] {
        assert_eq!(local.read(id, None).await.0, 200, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_exits_with_the_registry_s_message() {
    let local = Local::start(|_| {}).await;
    let first = local.archive("kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0").tar_gz());
    assert_eq!(local.cli(&["publish", path_arg(&first)], &[]).await.code, Some(0));
    // Valid on its own, so only the registry can refuse it: the same version with other bytes.
    let other = Package::single_tenant("kafka-connector", "1.0.0").file("kafka-connector-1.0.0/extra", b"x").tar_gz();
    let second = local.archive("kafka-again.tar.gz", &other);
    let refused = local.cli(&["publish", path_arg(&second)], &[]).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    let message = local.register_refusal(other).await;
    assert!(refused.stderr.contains("publish: refused (HTTP 409 "), "{refused:?}");
    assert!(refused.stderr.contains(&format!("): {message}\n")), "the server's own message, {message:?}: {refused:?}");
    assert_eq!(local.rows(None).await, vec![("kafka-connector-1.0.0".to_owned(), "Live".to_owned())]);
}

/// An invalid package never leaves the machine: nothing even connects to the registry's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_validation_refuses_an_invalid_package_before_any_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("broken.tar.gz");
    std::fs::write(&path, Package::single_tenant("kafka-connector", "1.0.0").without("metadata.json").tar_gz())
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let refused = run(vec!["publish".into(), path_arg(&path).into(), "--url".into(), url.clone()], &[]).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let connection = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(connection, Err(std::io::ErrorKind::WouldBlock), "nothing was sent");
    // In validate's words.
    let validated = run(vec!["validate".into(), path_arg(&path).into()], &[]).await;
    assert_eq!(validated.code, Some(1), "{validated:?}");
    assert!(validated.stderr.starts_with("invalid distribution: "), "{validated:?}");
    assert_eq!(refused.stderr, format!("publish: {}", validated.stderr));

    // A file that is not there, and a registry that is not there: exit 2, a message, no panic.
    let missing = run(vec!["publish".into(), files.path().join("nothing.tar.gz").to_str().unwrap().into()], &[]).await;
    assert_eq!(missing.code, Some(2), "{missing:?}");
    assert!(missing.stderr.contains("publish: reading ") && missing.stderr.contains("nothing.tar.gz"), "{missing:?}");
    std::fs::write(&path, Package::single_tenant("kafka-connector", "1.0.0").tar_gz()).unwrap();
    drop(listener);
    let unreachable = run(vec!["publish".into(), path_arg(&path).into()], &[("REGISTRY_URL", &url)]).await;
    assert_eq!(unreachable.code, Some(2), "{unreachable:?}");
    assert!(unreachable.stderr.contains("publish: the registry could not be reached: "), "{unreachable:?}");
    assert!(!unreachable.stderr.contains("panicked"), "{unreachable:?}");
}

/// Above the multipart limit the archive goes through generate-url, a PUT to the URL it gives,
/// and a register by reference; below it, a server with a low limit refuses the one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_archive_is_published_through_an_upload_url() {
    const LIMIT: u64 = 16 * 1024;
    let local = Local::start(|config| config.max_upload_bytes = LIMIT).await;
    let package = Package::single_tenant("kafka-connector", "1.0.0")
        .file("kafka-connector-1.0.0/lib/connector.jar", &noise(20_000));
    let bytes = package.tar_gz();
    assert!(bytes.len() as u64 > LIMIT);
    let path = local.archive("kafka-connector.tar.gz", &bytes);

    let refused = local.cli(&["publish", path_arg(&path)], &[]).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("HTTP 413 PAYLOAD_TOO_LARGE") && refused.stderr.contains(&format!("{LIMIT} bytes")),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("--by-reference"), "the way out is named: {refused:?}");
    assert!(local.rows(None).await.is_empty());

    let limit = LIMIT.to_string();
    let published = local.cli(&["publish", path_arg(&path)], &[("REGISTRY_MULTIPART_LIMIT", &limit)]).await;
    assert_eq!(published.code, Some(0), "{published:?}");
    assert!(published.stderr.contains("registering it through an upload URL"), "{published:?}");
    assert_eq!(
        published.json(),
        json!({"message": "connector registered successfully.", "rows": ["kafka-connector-1.0.0"]})
    );
    let (status, read) = local.read("kafka-connector-1.0.0", None).await;
    assert_eq!(status, 200, "{read}");
    // The archive stored is the file, byte for byte.
    let row = local.server.catalog().rows().get_any("kafka-connector-1.0.0").await.unwrap().expect("the row");
    let key = StoredName::parse(&row.source_url).expect("a stored name").key();
    let mut stored = local.server.archives().open(&key).await.unwrap().expect("the archive is stored");
    let mut stored_bytes = Vec::new();
    std::io::Read::read_to_end(&mut stored, &mut stored_bytes).unwrap();
    assert_eq!(stored_bytes, bytes);

    // --by-reference takes the same path whatever the size.
    let small = local.archive("small.tar.gz", &Package::single_tenant("kafka-connector", "1.0.1").tar_gz());
    let forced = local.cli(&["publish", path_arg(&small), "--by-reference"], &[]).await;
    assert_eq!(forced.code, Some(0), "{forced:?}");
    assert!(forced.stderr.contains("registering it through an upload URL"), "{forced:?}");
    assert_eq!(local.read("kafka-connector-1.0.1", None).await.0, 200);
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A server that verifies tokens, and tokens it takes: one for `roles`.
async fn secured() -> (Local, impl Fn(&[&str]) -> String) {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a key");
    let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let rules = TokenRules { issuer: None, audience: None, roles_claim: RolesClaim::default() };
    let verifier = Arc::new(JwtVerifier::from_pem(public_pem.as_bytes(), &rules).unwrap());
    let local = Local::start(|config| config.auth = Authenticator::Jwt(verifier)).await;
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let mint = move |roles: &[&str]| {
        let claims = json!({"id": "u1", "user_name": "author", "roles": roles, "iat": now(), "exp": now() + 600});
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    };
    (local, mint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_sent_on_every_call() {
    let (local, mint) = secured().await;
    let path = local.archive("kafka.tar.gz", &Package::single_tenant("kafka-connector", "1.0.0").tar_gz());
    let path = path_arg(&path);

    let anonymous = local.cli(&["publish", path], &[]).await;
    assert_eq!(anonymous.code, Some(1), "{anonymous:?}");
    assert!(anonymous.stderr.contains("HTTP 401 UNAUTHORIZED ACCESS): No token provided"), "{anonymous:?}");
    let viewer = mint(&["viewer"]);
    let reader = local.cli(&["publish", path, "--token", &viewer], &[]).await;
    assert_eq!(reader.code, Some(1), "{reader:?}");
    assert!(reader.stderr.contains("HTTP 403 FORBIDDEN ACCESS): Access denied."), "{reader:?}");

    // From the environment, in one request and through an upload URL (generate-url and register).
    let manager = mint(&["dataset_manager"]);
    let published = local.cli(&["publish", path], &[("REGISTRY_TOKEN", &manager)]).await;
    assert_eq!(published.code, Some(0), "{published:?}");
    let path = local.archive("kafka-2.tar.gz", &Package::single_tenant("kafka-connector", "2.0.0").tar_gz());
    let bearer = format!("Bearer {manager}");
    let published = local.cli(&["publish", path_arg(&path), "--by-reference", "--token", &bearer], &[]).await;
    assert_eq!(published.code, Some(0), "{published:?}");
    assert_eq!(local.read("kafka-connector-2.0.0", Some(&manager)).await.0, 200);
    assert!(!published.stderr.contains(&manager) && !published.stdout.contains(&manager), "the token is never printed");
}

/// The status transitions, as `POST /v2/connectors/status-transition` answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_promoted_retired_and_deleted() {
    let (local, mint) = secured().await;
    let admin = mint(&["admin"]);
    let token = [("REGISTRY_TOKEN", admin.as_str())];
    for version in ["1.0.0", "2.0.0"] {
        let path =
            local.archive(&format!("{version}.tar.gz"), &Package::single_tenant("kafka-connector", version).tar_gz());
        assert_eq!(local.cli(&["publish", path_arg(&path)], &token).await.code, Some(0));
    }
    let rows = |live: &str, retired: &str| {
        let mut rows = vec![(live.to_owned(), "Live".to_owned()), (retired.to_owned(), "Retired".to_owned())];
        rows.sort();
        rows
    };
    assert_eq!(local.rows(Some(&admin)).await, rows("kafka-connector-2.0.0", "kafka-connector-1.0.0"));

    // A rollback: 1.0.0 Live again, 2.0.0 retired.
    let promoted =
        local.cli(&["connector", "promote", "kafka-connector-1.0.0", "--reason", "2.0.0 drops events"], &token).await;
    assert_eq!(promoted.code, Some(0), "{promoted:?}");
    let result = promoted.json();
    assert_eq!(
        (&result["id"], &result["status"], &result["previous_status"], &result["reason"]),
        (&json!("kafka-connector-1.0.0"), &json!("Live"), &json!("Retired"), &json!("2.0.0 drops events")),
        "{result}"
    );
    assert_eq!(local.rows(Some(&admin)).await, rows("kafka-connector-1.0.0", "kafka-connector-2.0.0"));

    let without_token = local.cli(&["connector", "retire", "kafka-connector-1.0.0"], &[]).await;
    assert_eq!(without_token.code, Some(1), "{without_token:?}");
    assert!(without_token.stderr.contains("connector: refused (HTTP 401"), "{without_token:?}");

    let live = local.cli(&["connector", "delete", "kafka-connector-1.0.0"], &token).await;
    assert_eq!(live.code, Some(1), "a Live version is not deleted: {live:?}");
    assert!(live.stderr.contains("connector: refused (HTTP 409 CONNECTOR_DELETE_FAILURE): "), "{live:?}");
    let unknown = local.cli(&["connector", "retire", "kafka-connector-9.9.9"], &token).await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("connector: refused (HTTP 404 CONNECTOR_NOT_FOUND): "), "{unknown:?}");

    let deleted = local.cli(&["connector", "delete", "kafka-connector-2.0.0", "--reason", "broken"], &token).await;
    assert_eq!(deleted.code, Some(0), "{deleted:?}");
    assert_eq!(deleted.json()["status"], "Deleted", "{deleted:?}");
    let retired = local.cli(&["connector", "retire", "kafka-connector-1.0.0"], &token).await;
    assert_eq!(retired.code, Some(0), "{retired:?}");
    assert_eq!(local.rows(Some(&admin)).await, vec![("kafka-connector-1.0.0".to_owned(), "Retired".to_owned())]);
}
