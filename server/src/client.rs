//! The registry's own client, for connector authors and CI jobs: `registry-server publish` (a
//! package checked here with the registry's rules, then registered in one multipart request or,
//! when it is larger, through an upload URL and a register by reference) and `registry-server
//! connector promote|retire|delete` (status transitions). It speaks the Obsrv v2 API, so it works
//! against the local server and against the stack's API Gateway URL alike.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use registry_shared::api::Route;
use registry_shared::distribution::reader::ReadError;
use registry_shared::distribution::{Limits, build_rows, read_distribution};
use registry_shared::domain::{ConnectorRow, Timestamp};
use registry_shared::quoting::is_hidden;
use registry_shared::registry::StoredName;
use serde_json::{Value, json};

/// Where the client finds the registry unless told: the local server's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";

/// Largest archive sent in one multipart register request. API Gateway hands the register
/// function at most 6 MB of body, and the local server takes far more (`--max-upload-bytes`), so
/// an archive this size registers either way; a larger one goes through an upload URL.
pub const DEFAULT_MULTIPART_LIMIT: u64 = 6 * 1024 * 1024;

const STATUS_TRANSITION_PATH: &str = "/v2/connectors/status-transition";
const STATUS_TRANSITION_ID: &str = "api.connectors.status-transition";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read: the registry's answers here are envelopes of a few KB.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Longest server message repeated; a page of text is not a message.
const MAX_MESSAGE_CHARS: usize = 2000;
const USER_AGENT_VALUE: &str = concat!("registry-server/", env!("CARGO_PKG_VERSION"));

type Body = BoxBody<Bytes, std::io::Error>;
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// A package as a registration would take it, read from a file.
#[derive(Debug)]
pub struct Checked {
    /// Hex SHA-256 of the archive.
    pub sha256: String,
    pub archive_bytes: u64,
    /// The rows a registration writes, under a stored name made up here.
    pub rows: Vec<ConnectorRow>,
}

/// Reads the archive at `path` with the registry's rules, limits and write budget, as a
/// registration does: what passes here registers wherever the limits are the same.
pub fn check_archive(path: &Path, limits: &Limits) -> Result<Checked, ReadError> {
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let stored_name = StoredName::generate(&file_name(path));
    let distribution = read_distribution(&mut file, limits)?;
    let rows = build_rows(&distribution, stored_name.as_str(), Timestamp::now()).map_err(ReadError::Invalid)?;
    Ok(Checked { sha256: distribution.sha256, archive_bytes: distribution.archive_bytes, rows })
}

/// The last segment of `path`, the name an upload is known by.
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether an archive of `archive_bytes` named `name` is too large for one multipart request of
/// at most `multipart_limit` bytes (the body, its framing included).
pub fn needs_upload_url(archive_bytes: u64, name: &str, multipart_limit: u64) -> bool {
    let (head, tail) = multipart_framing(name, &"-".repeat(BOUNDARY_LEN));
    let framing = (head.len() + tail.len()) as u64;
    archive_bytes > multipart_limit.saturating_sub(framing)
}

/// `registry-` and a simple UUID: never in an archive by chance.
const BOUNDARY_LEN: usize = 9 + 32;

/// What a multipart body with one file part, the archive, holds before and after it.
fn multipart_framing(name: &str, boundary: &str) -> (String, String) {
    // As browsers write a file name: quotes and line breaks percent-encoded; the rest of what is
    // not printable ASCII too, so the part's headers are ASCII (the registry keeps only
    // [A-Za-z0-9._-] of it anyway).
    let mut file_name = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'%' || byte == b' ' {
            file_name.push(byte as char);
        } else {
            file_name.push_str(&format!("%{byte:02X}"));
        }
    }
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    (head, format!("\r\n--{boundary}--\r\n"))
}

/// A status transition a row can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Make the version Live (promotion, or rollback to an older one).
    Promote,
    /// Retire the version.
    Retire,
    /// Remove a version that is not Live.
    Delete,
}

impl Transition {
    /// The `request.status` that asks for it.
    pub fn status(self) -> &'static str {
        match self {
            Transition::Promote => "Live",
            Transition::Retire => "Retire",
            Transition::Delete => "Delete",
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The registry, or the upload URL it gave, answered with a refusal.
    Refused {
        status: StatusCode,
        /// The envelope's error code, when the answer is the registry's envelope.
        code: Option<String>,
        /// The answer's message, its invisible and control characters shown as `<U+XXXX>`.
        message: String,
    },
    /// No answer to go by: the registry not reached, the connection cut, a local file that
    /// cannot be read, or an answer that is not the registry's.
    Failed(anyhow::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused { status, code: Some(code), message } => {
                write!(f, "refused (HTTP {} {code}): {message}", status.as_u16())
            }
            Failure::Refused { status, code: None, message } => {
                write!(f, "refused (HTTP {}): {message}", status.as_u16())
            }
            Failure::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Failed(error)
    }
}

/// A registry at one URL, called with one token.
pub struct Registry {
    http: HttpClient,
    /// The URL without a trailing slash; route paths are appended to it.
    base: String,
    token: Option<HeaderValue>,
}

impl Registry {
    /// A client of the registry at `url` (`http://host:port`, or an API Gateway URL with its
    /// stage path). `token` is sent as `Authorization: Bearer`, which the local server and every
    /// `AuthMode` on AWS read; a `Bearer ` prefix given with it is tolerated.
    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let parsed: Uri = url.parse().with_context(|| format!("{} is not a URL", shown(url)))?;
        anyhow::ensure!(
            matches!(parsed.scheme_str(), Some("http" | "https")) && parsed.authority().is_some(),
            "the registry's URL must start with http:// or https:// and name a host, unlike {}",
            shown(url)
        );
        anyhow::ensure!(parsed.query().is_none(), "the registry's URL takes no query: {}", shown(url));
        let token = token
            .map(str::trim)
            .map(|token| match token.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
                _ => token,
            })
            .filter(|token| !token.is_empty())
            .map(|token| {
                let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| anyhow!("the token holds characters a header cannot carry"))?;
                value.set_sensitive(true);
                anyhow::Ok(value)
            })
            .transpose()?;
        Ok(Self { http: http_client()?, base: url.trim_end_matches('/').to_owned(), token })
    }

    /// Registers the archive at `path` (`archive_bytes` long, checked already): in one multipart
    /// request, or `by_reference`, through an upload URL and a register by reference. With
    /// `progress`, the upload draws a bar on stderr. Answers the register answer's `result`.
    pub async fn publish(
        &self,
        path: &Path,
        archive_bytes: u64,
        by_reference: bool,
        progress: bool,
    ) -> Result<Value, Failure> {
        let name = file_name(path);
        if by_reference {
            let stored_name = self.upload(path, &name, archive_bytes, progress).await?;
            let request = envelope(Route::Register.api_id(), json!({ "relative_path": stored_name }));
            return self.post_json(Route::Register.path(), &request).await;
        }
        let boundary = format!("registry-{}", uuid::Uuid::new_v4().simple());
        let (head, tail) = multipart_framing(&name, &boundary);
        let length = head.len() as u64 + archive_bytes + tail.len() as u64;
        let file = file_chunks(path, archive_bytes, progress).await?;
        let chunks = stream::once(async move { Ok(Bytes::from(head)) })
            .chain(file)
            .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
        let body = streamed(chunks);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let request = self.request(Route::Register.path(), &content_type, length)?;
        self.call(request.body(body)?).await
    }

    /// Asks for an upload URL for `name` and puts the archive there; answers the stored name to
    /// register it by.
    async fn upload(&self, path: &Path, name: &str, archive_bytes: u64, progress: bool) -> Result<String, Failure> {
        let request =
            envelope(Route::GenerateUrl.api_id(), json!({ "files": [name], "access": "write", "type": "connector" }));
        let result = self.post_json(Route::GenerateUrl.path(), &request).await?;
        let signed = result.get(0).filter(|signed| signed.is_object());
        let field = |key: &str| signed.and_then(|signed| signed.get(key)).and_then(Value::as_str);
        let (Some(url), Some(stored_name)) = (field("preSignedUrl"), field("fileName")) else {
            let answer = excerpt(&result.to_string());
            return Err(anyhow!("generate-url answered no preSignedUrl and fileName: {answer}").into());
        };
        put(&self.http, url, path, archive_bytes, progress).await?;
        Ok(stored_name.to_owned())
    }

    /// Asks for a status transition of the row `id`; answers the result describing the row.
    pub async fn transition(&self, id: &str, to: Transition, reason: Option<&str>) -> Result<Value, Failure> {
        let mut request = json!({ "id": id, "status": to.status() });
        if let Some(reason) = reason {
            request["reason"] = json!(reason);
        }
        self.post_json(STATUS_TRANSITION_PATH, &envelope(STATUS_TRANSITION_ID, request)).await
    }

    /// A POST to the route at `path`, with the token.
    fn request(&self, path: &str, content_type: &str, length: u64) -> anyhow::Result<http::request::Builder> {
        let uri: Uri = format!("{}{path}", self.base).parse().context("the registry's URL")?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, length);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        Ok(request)
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let body = Bytes::from(serde_json::to_vec(body).context("writing the request")?);
        let request = self.request(path, "application/json", body.len() as u64)?;
        self.call(request.body(full(body))?).await
    }

    /// Sends a request to the registry and answers its envelope's `result`.
    async fn call(&self, request: Request<Body>) -> Result<Value, Failure> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| anyhow!(chain(&e)).context("the registry could not be reached"))?;
        let status = response.status();
        let location = response.headers().get(LOCATION).map(|l| shown(&String::from_utf8_lossy(l.as_bytes())));
        let body = read_answer(response).await.context("the registry's answer could not be read")?;
        if status.is_redirection() {
            let location = location.unwrap_or_else(|| "nowhere".to_owned());
            let status = status.as_u16();
            return Err(anyhow!(
                "the registry's URL answers with a redirect (HTTP {status}) to {location}: give the URL it names"
            )
            .into());
        }
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let document: Value = serde_json::from_slice(&body).map_err(|_| {
            anyhow!(
                "the answer (HTTP {}) is not the registry's: {}",
                status.as_u16(),
                excerpt(&String::from_utf8_lossy(&body))
            )
        })?;
        Ok(document.get("result").cloned().unwrap_or(Value::Null))
    }
}

impl From<http::Error> for Failure {
    fn from(error: http::Error) -> Self {
        Failure::Failed(anyhow!(error).context("making the request"))
    }
}

/// The HTTP client: HTTP/1.1, TLS through rustls with ring (as everywhere in the registry),
/// trusting the system's roots (Mozilla's when the system has none); redirects are not followed.
fn http_client() -> anyhow::Result<HttpClient> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn streamed(chunks: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static) -> Body {
    BodyExt::boxed(StreamBody::new(chunks.map(|chunk| chunk.map(Frame::data))))
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// An answer's body, up to `MAX_ANSWER_BYTES`.
async fn read_answer(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Bytes> {
    let collected = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await;
    Ok(collected.map_err(|e| anyhow!(chain(&*e)))?.to_bytes())
}

/// Puts the archive at `path` to an upload URL. The URL carries its own authority (a signature
/// in its query), so no token goes with it, and errors leave it out: it is a credential for a
/// few minutes. The length is sent, as S3's presigned PUTs require.
async fn put(http: &HttpClient, url: &str, path: &Path, archive_bytes: u64, progress: bool) -> Result<(), Failure> {
    let uri: Uri = url.parse().map_err(|_| anyhow!("generate-url answered an upload URL that is not a URL"))?;
    let chunks = file_chunks(path, archive_bytes, progress).await?;
    let request = Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(CONTENT_LENGTH, archive_bytes)
        .body(streamed(chunks))?;
    let response =
        http.request(request).await.map_err(|e| anyhow!(chain(&e)).context("the upload URL could not be reached"))?;
    let status = response.status();
    let body = read_answer(response).await.context("the upload URL's answer could not be read")?;
    if status.is_success() {
        return Ok(());
    }
    match refusal(status, &body) {
        Failure::Refused { status, code, message } => {
            Err(Failure::Refused { status, code, message: format!("the upload URL took no archive: {message}") })
        }
        failed => Err(failed),
    }
}

/// The Obsrv request envelope around `request`.
fn envelope(api_id: &str, request: Value) -> Value {
    json!({
        "id": api_id,
        "ver": "v2",
        "ts": Timestamp::now().to_string(),
        "params": { "msgid": uuid::Uuid::new_v4().to_string() },
        "request": request,
    })
}

/// The file streamed from disk, counted on a bar when `progress`.
async fn file_chunks(
    path: &Path,
    archive_bytes: u64,
    progress: bool,
) -> Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static, Failure> {
    let file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut bar = progress.then(|| ProgressBar::new(archive_bytes));
    Ok(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).map(move |chunk| {
        if let (Ok(bytes), Some(bar)) = (&chunk, bar.as_mut()) {
            bar.advance(bytes.len() as u64);
        }
        chunk
    }))
}

/// A refusal as the answer words it: the registry's envelope (`error.code`, `error.message`, or
/// Obsrv's `params.err`/`params.errmsg`), API Gateway's `{"message": ...}`, S3's XML error, or
/// plain text.
fn refusal(status: StatusCode, body: &[u8]) -> Failure {
    let document: Option<Value> = serde_json::from_slice(body).ok();
    let text = |pointer: &str| {
        let value = document.as_ref()?.pointer(pointer)?.as_str()?;
        (!value.trim().is_empty()).then(|| shown(value))
    };
    let raw = String::from_utf8_lossy(body);
    let code = text("/error/code").or_else(|| text("/params/err")).or_else(|| xml_element(&raw, "Code").map(shown));
    let message = ["/error/message", "/params/errmsg", "/message", "/error"]
        .into_iter()
        .find_map(text)
        .or_else(|| xml_element(&raw, "Message").map(shown))
        .or_else(|| document.is_none().then(|| excerpt(&raw)).filter(|text| !text.is_empty()))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
    Failure::Refused { status, code, message }
}

/// The text of the first `<name>` element of an XML document (S3's errors), if there is one.
fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(&text[start..end])
}

/// Text from a server, whitespace runs as one space, for one line of a message.
fn excerpt(text: &str) -> String {
    shown(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Text from a server as a terminal may show it: control and invisible characters as
/// `<U+XXXX>`, so that an answer can neither hide nor rewrite what is printed; cut when long.
fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_hidden(c) {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes on one line (hyper's own text names only the outermost).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in std::iter::successors(error.source(), |e| e.source()) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// An upload's progress on stderr, redrawn in place at most ten times a second; the line ends
/// when the bar is dropped (the body sent, or the request given up).
struct ProgressBar {
    total: u64,
    sent: u64,
    drawn: Option<Instant>,
}

const BAR_WIDTH: usize = 30;
const REDRAW: Duration = Duration::from_millis(100);

impl ProgressBar {
    fn new(total: u64) -> Self {
        let mut bar = Self { total, sent: 0, drawn: None };
        bar.draw();
        bar
    }

    fn advance(&mut self, bytes: u64) {
        self.sent = self.sent.saturating_add(bytes);
        if self.sent >= self.total || self.drawn.is_none_or(|at| at.elapsed() >= REDRAW) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let line = bar_line(self.sent, self.total);
        // A terminal that cannot be written to loses its bar, nothing more.
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{line}").and_then(|()| stderr.flush());
        self.drawn = Some(Instant::now());
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        if self.drawn.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `uploading [=========>          ]  45%  12.3 MiB of 27.0 MiB`
fn bar_line(sent: u64, total: u64) -> String {
    let fraction = if total == 0 { 1.0 } else { (sent as f64 / total as f64).min(1.0) };
    let filled = (fraction * BAR_WIDTH as f64) as usize;
    let head = if filled < BAR_WIDTH { ">" } else { "" };
    let bar = format!("{}{head}", "=".repeat(filled));
    let percent = (fraction * 100.0) as u32;
    format!("uploading [{bar:<BAR_WIDTH$}] {percent:>3}%  {} of {}", size(sent.min(total)), size(total))
}

/// A byte count for people: KiB below a MiB, else MiB, one decimal.
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    if (bytes as f64) < KIB * KIB {
        format!("{:.1} KiB", bytes as f64 / KIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / (KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn archives_over_the_limit_with_their_framing_take_the_upload_url() {
        let framing = |name: &str| {
            let (head, tail) = multipart_framing(name, &"-".repeat(BOUNDARY_LEN));
            (head.len() + tail.len()) as u64
        };
        let fits = 2000 - framing("k.tar.gz");
        assert!(!needs_upload_url(fits, "k.tar.gz", 2000));
        assert!(needs_upload_url(fits + 1, "k.tar.gz", 2000), "the framing counts");
        assert!(needs_upload_url(fits, "k\"\r\n.tar.gz", 2000), "so does an encoded name");
        assert_eq!(format!("registry-{}", uuid::Uuid::new_v4().simple()).len(), BOUNDARY_LEN);
        let (head, _) = multipart_framing("ké\"\r\n%.tar.gz", "b");
        assert!(head.contains("filename=\"k%C3%A9%22%0D%0A%25.tar.gz\""), "{head}");
        assert!(needs_upload_url(u64::MAX, "k.tar.gz", u64::MAX));
        assert!(needs_upload_url(1, "k.tar.gz", 0), "no limit is too low");
    }

    #[test]
    fn refusals_carry_the_message_of_whoever_answered() {
        let message = |body: &str| match refusal(StatusCode::BAD_REQUEST, body.as_bytes()) {
            Failure::Refused { code, message, .. } => (code, message),
            Failure::Failed(e) => panic!("{e}"),
        };
        let registry = r#"{"id":"api.connector.register","ver":"v2","params":{"status":"FAILED"},"responseCode":"BAD_REQUEST",
            "error":{"code":"FAILED_TO_REGISTER_CONNECTOR","message":"metadata.json: \"id\" is missing","trace":""}}"#;
        assert_eq!(
            message(registry),
            (Some("FAILED_TO_REGISTER_CONNECTOR".into()), "metadata.json: \"id\" is missing".into())
        );
        let obsrv = r#"{"params":{"status":"FAILED","err":"CONNECTOR_NOT_FOUND","errmsg":"not found"}}"#;
        assert_eq!(message(obsrv), (Some("CONNECTOR_NOT_FOUND".into()), "not found".into()));
        assert_eq!(message(r#"{"message":"Unauthorized"}"#), (None, "Unauthorized".into()));
        let s3 =
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert_eq!(message(s3), (Some("AccessDenied".into()), "Request has expired".into()));
        assert_eq!(message("this URL was used already\n"), (None, "this URL was used already".into()));
        assert_eq!(message(""), (None, "Bad Request".into()));
        // An answer cannot move the cursor or hide text in what is printed.
        assert_eq!(
            message("{\"error\":{\"message\":\"bad\\u001b[2Kname\\u202e\"}}"),
            (None, "bad<U+001B>[2Kname<U+202E>".into())
        );
    }

    #[test]
    fn a_bearer_prefix_and_blank_tokens_are_tolerated() {
        let token = |given: Option<&str>| Registry::new(DEFAULT_URL, given).unwrap().token;
        assert_eq!(token(Some("abc")), Some(HeaderValue::from_static("Bearer abc")));
        assert_eq!(token(Some("Bearer abc")), Some(HeaderValue::from_static("Bearer abc")));
        assert_eq!(token(Some("bearer  abc\n")), Some(HeaderValue::from_static("Bearer abc")));
        assert_eq!(token(Some("  ")), None);
        assert_eq!(token(None), None);
        assert!(Registry::new(DEFAULT_URL, Some("a\u{7f}b")).is_err(), "not a header value");
        assert_eq!(
            Registry::new("https://abc.execute-api.eu-west-1.amazonaws.com/prod/", None).unwrap().base,
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
        );
        for wrong in ["127.0.0.1:3000", "ftp://host/", "http://host/?stage=prod"] {
            assert!(Registry::new(wrong, None).is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_bar_fills_with_what_was_sent() {
        assert_eq!(bar_line(0, 2048), format!("uploading [>{}]   0%  0.0 KiB of 2.0 KiB", " ".repeat(29)));
        assert_eq!(
            bar_line(3 << 20, 6 << 20),
            format!("uploading [{}>{}]  50%  3.0 MiB of 6.0 MiB", "=".repeat(15), " ".repeat(14))
        );
        assert_eq!(bar_line(6 << 20, 6 << 20), format!("uploading [{}] 100%  6.0 MiB of 6.0 MiB", "=".repeat(30)));
        assert_eq!(bar_line(0, 0), format!("uploading [{}] 100%  0.0 KiB of 0.0 KiB", "=".repeat(30)));
    }

    /// What reaches an upload URL: the length (S3's presigned PUTs take no chunked body), the
    /// archive, and no token.
    #[tokio::test]
    async fn an_upload_sends_its_length_and_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.tar.gz");
        let archive: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &archive).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/upload?signature=secret", listener.local_addr().unwrap());
        let received = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let read = socket.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..read]);
                let head_end = request.windows(4).position(|w| w == b"\r\n\r\n");
                if read == 0 || head_end.is_some_and(|end| request.len() >= end + 4 + 200_000) {
                    break;
                }
            }
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            request
        });
        let registry = Registry::new(DEFAULT_URL, Some("a-token")).unwrap();
        put(&registry.http, &url, &path, archive.len() as u64, false).await.unwrap();
        let request = received.await.unwrap();
        let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        assert!(head.starts_with("put /upload?signature=secret http/1.1"), "{head}");
        assert!(head.contains("content-length: 200000"), "{head}");
        assert!(!head.contains("transfer-encoding") && !head.contains("authorization"), "{head}");
        assert_eq!(&request[end + 4..], &archive[..]);
    }

    #[tokio::test]
    async fn an_upload_url_that_is_not_there_fails_without_repeating_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.tar.gz");
        std::fs::write(&path, b"archive").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let registry = Registry::new(DEFAULT_URL, None).unwrap();
        let url = format!("http://127.0.0.1:{port}/upload?X-Amz-Signature=secret");
        let failure = put(&registry.http, &url, &path, 7, false).await.unwrap_err();
        let text = failure.to_string();
        assert!(matches!(failure, Failure::Failed(_)), "{text}");
        assert!(text.starts_with("the upload URL could not be reached"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
