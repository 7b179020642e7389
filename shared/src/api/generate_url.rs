//! `POST /v2/files/generate-url` with `request.type` `connector`: presigned URLs to upload new
//! archives (`access: write`) or to download registered ones (`access: read`). Large archives go
//! this way: the client PUTs the archive to the URL, then registers it by reference. Uploads wait
//! under their own prefix, which no read URL reaches: only registered archives can be read.
//!
//! `POST /v2/files/url-access` (API id `api.files.generate.url`) is the same read access for
//! Obsrv's runtime pods, which fetch a connector's archive by its `source_url`; it gives no upload
//! URLs. Who may call it is the deployment's guard (IAM on AWS, loopback locally).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::schema::Schema;
use super::{Response, Route, body_bytes, error_response, success_response};
use crate::auth::Authenticator;
use crate::error::RegistryError;
use crate::registry::{ARCHIVE_PREFIX, ArchiveStore, StoredName};

/// Most files one request may ask URLs for.
pub const MAX_FILES_PER_REQUEST: usize = 20;
/// URLs expire after at most ten minutes, as in Obsrv.
pub const MAX_URL_EXPIRY: Duration = Duration::from_secs(600);

/// What the generate-url handler needs.
#[derive(Clone)]
pub struct FilesState {
    pub archives: Arc<dyn ArchiveStore>,
    /// How long a URL stays valid (at most `MAX_URL_EXPIRY`).
    pub expiry: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedFile {
    file_path: String,
    file_name: String,
    pre_signed_url: String,
}

pub async fn handle(state: &FilesState, auth: &Authenticator, request: lambda_http::Request) -> Response {
    answer(Route::GenerateUrl, state, Some(auth), request).await
}

/// The system route: read URLs only, for callers the deployment's guard already admitted.
pub async fn handle_url_access(state: &FilesState, request: lambda_http::Request) -> Response {
    answer(Route::UrlAccess, state, None, request).await
}

/// `writer_check` is how upload URLs are authorised; without one, none are given.
async fn answer(
    route: Route,
    state: &FilesState,
    writer_check: Option<&Authenticator>,
    request: lambda_http::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let document: Value = match serde_json::from_slice(&body_bytes(body)) {
        Ok(document) => document,
        Err(e) => {
            let error = RegistryError::FilesInputInvalid(format!("request body is not valid JSON: {e}"));
            return error_response(route, None, &error);
        }
    };
    let msgid = document.pointer("/params/msgid").and_then(Value::as_str).filter(|m| !m.is_empty());
    let outcome = async {
        let (access, files) = parse(route, &document)?;
        if access == Access::Write {
            // Upload URLs are for those who may register (any reader may ask for read URLs).
            let Some(auth) = writer_check else {
                return Err(RegistryError::FilesInputInvalid(
                    "request/access must be read: this route gives read URLs of registered archives only".into(),
                ));
            };
            auth.admit(crate::auth::WRITER_ROLES, &http::Request::from_parts(parts, ()))?;
        }
        sign(state, access, &files).await
    }
    .await;
    match outcome {
        Ok(signed) => success_response(route, msgid, signed),
        Err(error) => error_response(route, msgid, &error),
    }
}

async fn sign(state: &FilesState, access: Access, files: &[String]) -> Result<Vec<SignedFile>, RegistryError> {
    let expiry = state.expiry.min(MAX_URL_EXPIRY);
    let mut signed = Vec::with_capacity(files.len());
    for file in files {
        let (name, key, url) = match access {
            Access::Write => {
                let name = StoredName::generate(file);
                let key = name.upload_key();
                let url = state.archives.presign_put(&key, expiry).await?;
                (name, key, url)
            }
            Access::Read => {
                let bare = file.strip_prefix(&format!("{ARCHIVE_PREFIX}/")).unwrap_or(file);
                let name = StoredName::parse(bare).ok_or_else(|| {
                    RegistryError::FilesInputInvalid(format!(
                        "{} is not a stored archive name",
                        crate::quoting::quote(file)
                    ))
                })?;
                // Only registration stores archives here, so every one is referenced by rows.
                let key = name.key();
                if !state.archives.exists(&key).await? {
                    return Err(RegistryError::ArchiveNotFound(name.as_str().to_owned()));
                }
                let url = state.archives.presign_get(&key, expiry).await?;
                (name, key, url)
            }
        };
        signed.push(SignedFile {
            file_path: key.as_str().to_owned(),
            file_name: name.as_str().to_owned(),
            pre_signed_url: url,
        });
    }
    Ok(signed)
}

/// The original's request schema of both file routes, checked the way the list request is (first
/// error, Ajv's words). It requires nothing at the top, so Obsrv's runtime posts
/// `{"request": {"files": [...], "access": "read", "type": "connector"}}` alone; `id`, `ver`, `ts`
/// and `params` are checked only when present. `access` defaults to `write`, as in the original;
/// `type` may be left out (this registry serves connector files only).
fn parse(route: Route, document: &Value) -> Result<(Access, Vec<String>), RegistryError> {
    let invalid = RegistryError::FilesInputInvalid;
    let root = Schema::root();
    let top = root.open_object(document).map_err(invalid)?;
    if let Some(value) = top.get("id") {
        let id = root.property("id");
        // The original's schema names generate-url's id, on url-access too; url-access's own id is
        // accepted there as well.
        let text = id.string(value).map_err(invalid)?;
        if text != Route::GenerateUrl.api_id() && text != route.api_id() {
            return Err(invalid(id.fail("enum", "must be equal to one of the allowed values")));
        }
    }
    for name in ["ver", "ts"] {
        if let Some(value) = top.get(name) {
            root.property(name).string(value).map_err(invalid)?;
        }
    }
    if let Some(value) = top.get("params") {
        let params = root.property("params");
        let params_object = params.object(value, &["msgid"], &["msgid"]).map_err(invalid)?;
        params.property("msgid").string(&params_object["msgid"]).map_err(invalid)?;
    }
    // No request, no files: what the original would fail on, answered as no files.
    let Some(request_value) = top.get("request") else { return Err(RegistryError::FilesNotProvided) };
    let request = root.property("request");
    let request_object: &Map<String, Value> =
        request.object(request_value, &["files"], &["files", "access", "type"]).map_err(invalid)?;
    let files_schema = request.property("files");
    let files =
        request_object["files"].as_array().ok_or_else(|| invalid(files_schema.fail("type", "must be array")))?;
    let items = files_schema.child("items");
    let files: Vec<String> = files
        .iter()
        .map(|f| match items.string(f)? {
            "" => Err(items.fail("minLength", "must NOT have fewer than 1 characters")),
            name => Ok(name.to_owned()),
        })
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    let access = match request_object.get("access") {
        None => Access::Write,
        Some(value) => match request.property("access").string(value).map_err(invalid)? {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => {
                return Err(invalid(
                    request.property("access").fail("enum", "must be equal to one of the allowed values"),
                ));
            }
        },
    };
    if let Some(value) = request_object.get("type")
        && request.property("type").string(value).map_err(invalid)? != "connector"
    {
        return Err(invalid(
            request
                .property("type")
                .fail("enum", "must be equal to one of the allowed values (this registry serves connector files)"),
        ));
    }
    if files.is_empty() {
        return Err(RegistryError::FilesNotProvided);
    }
    if files.len() > MAX_FILES_PER_REQUEST {
        return Err(RegistryError::FilesLimitExceeded(MAX_FILES_PER_REQUEST));
    }
    Ok((access, files))
}
