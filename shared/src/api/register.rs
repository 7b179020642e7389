//! `POST /v2/connector/register`: a multipart upload whose first file part is the archive, or a
//! JSON request naming an archive already uploaded (`request.relative_path`).
//!
//! The body is consumed as a stream of chunks and the archive is written to a staging file as it
//! arrives, so a server that can stream its request bodies registers archives of any size in
//! bounded memory; a Lambda function hands the whole (at most 6 MB) body over as one chunk.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use serde_json::Value;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::part_headers::{PartHeadersTooLarge, limit_part_headers};
use super::{RegisterState, Response, Route, body_bytes, error_response, success_response};
use crate::auth::Caller;
use crate::error::RegistryError;
use crate::registry::audit::ANONYMOUS;
use crate::registry::{Origin, StagedUpload, StoredName};

pub const REGISTERED_MESSAGE: &str = "connector registered successfully.";

/// What a body stream reports when its client sends too slowly; register answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the client sent the request body too slowly")]
pub struct SlowBody;

/// Whether a body error, or any error under it, is [`SlowBody`].
pub fn is_slow_body(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<SlowBody>())
}

/// A body error as the client should hear it: 408 when the client stalled, else 400.
pub fn body_error(error: &(dyn std::error::Error + 'static)) -> RegistryError {
    if is_slow_body(error) {
        RegistryError::RequestTimeout("The request body arrived too slowly".to_owned())
    } else {
        RegistryError::UploadInvalid("The request body could not be read".to_owned())
    }
}

/// Non-file fields are ignored, but not without bound; so is a JSON request.
const MAX_FIELD_BYTES: u64 = 64 * 1024;

/// The handler for a request whose body is already in memory (a Lambda event). The caller access
/// control admitted is in the request's extensions.
pub async fn handle(state: &RegisterState, request: lambda_http::Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body_bytes(body);
    if body.len() as u64 > state.max_body_bytes {
        return respond(Err(payload_too_large(state.max_body_bytes)));
    }
    let origin = origin(parts.extensions.get::<Caller>());
    respond(register(state, &parts.headers, stream::iter([Ok::<_, std::io::Error>(body)]), &origin).await)
}

/// The handler for a server that streams request bodies: the same steps, chunk by chunk.
pub async fn handle_stream<S, E>(
    state: &RegisterState,
    headers: &HeaderMap,
    body: S,
    caller: Option<&Caller>,
) -> Response
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    respond(register(state, headers, body, &origin(caller)).await)
}

/// A registration through this route, by the caller access control admitted.
fn origin(caller: Option<&Caller>) -> Origin {
    let subject = caller.map_or(ANONYMOUS, |caller| caller.subject.as_str());
    Origin::new(subject, Route::Register.route_key())
}

fn respond(outcome: Result<(Option<String>, Vec<String>), RegistryError>) -> Response {
    match outcome {
        Ok((msgid, warnings)) => {
            // The original's result; `warnings` only where there are some (clients ignore it).
            let mut result = serde_json::json!({ "message": REGISTERED_MESSAGE });
            if !warnings.is_empty() {
                result["warnings"] = serde_json::json!(warnings);
            }
            success_response(Route::Register, msgid.as_deref(), result)
        }
        Err(error) => error_response(Route::Register, None, &error),
    }
}

/// Registers what the body carries; answers the request's `msgid` when it had one (JSON), and the
/// registration's warnings.
async fn register<S, E>(
    state: &RegisterState,
    headers: &HeaderMap,
    body: S,
    origin: &Origin,
) -> Result<(Option<String>, Vec<String>), RegistryError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media_type.as_str() {
        "multipart/form-data" => {
            let boundary = multer::parse_boundary(&content_type).map_err(|_| {
                RegistryError::UploadInvalid("Invalid multipart body: the Content-Type has no boundary".to_owned())
            })?;
            let upload = stage_first_file(state, body, boundary).await?;
            let registered = state.registrar.register(upload, origin).await?;
            Ok((None, registered.warnings))
        }
        "application/json" => {
            let (msgid, stored_name) = parse_by_reference(&collect_small(body).await?)?;
            let registered = state.registrar.register_stored(&stored_name, origin).await?;
            Ok((msgid, registered.warnings))
        }
        _ => Err(RegistryError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data with the connector archive as a file part, \
             or application/json naming an uploaded archive in request.relative_path"
                .to_owned(),
        )),
    }
}

pub(crate) fn payload_too_large(limit: u64) -> RegistryError {
    RegistryError::PayloadTooLarge(format!("Request body exceeds the upload limit of {limit} bytes"))
}

async fn collect_small<S, E>(mut body: S) -> Result<Bytes, RegistryError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut collected = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            body_error(&*e)
        })?;
        collected.extend_from_slice(&chunk);
        if collected.len() as u64 > MAX_FIELD_BYTES {
            return Err(RegistryError::PayloadTooLarge(format!(
                "A JSON request is limited to {MAX_FIELD_BYTES} bytes"
            )));
        }
    }
    Ok(collected.into())
}

/// `{"id":"api.connector.register", ..., "request": {"relative_path": "<stored name>"}}`.
fn parse_by_reference(body: &[u8]) -> Result<(Option<String>, StoredName), RegistryError> {
    let invalid = |message: &str| RegistryError::UploadInvalid(message.to_owned());
    let document: Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("request body is not valid JSON: {e}")))?;
    let msgid = document.pointer("/params/msgid").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_owned);
    let path = document
        .pointer("/request/relative_path")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("request.relative_path must name an uploaded archive"))?;
    // A client may send the whole key; only the stored name counts.
    let name = path.strip_prefix(&format!("{}/", crate::registry::ARCHIVE_PREFIX)).unwrap_or(path);
    let stored_name = StoredName::parse(name).ok_or_else(|| {
        invalid(&format!(
            "request.relative_path {} is not the name of an uploaded archive",
            crate::quoting::quote(path)
        ))
    })?;
    Ok((msgid, stored_name))
}

/// Writes the first file part to a staging file as it streams in, and checks that no other file
/// part follows.
async fn stage_first_file<S, E>(state: &RegisterState, body: S, boundary: String) -> Result<StagedUpload, RegistryError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(state.max_body_bytes).per_field(state.max_body_bytes));
    let body = limit_part_headers(body, &boundary);
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let limit = state.max_body_bytes;
    let invalid = move |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => payload_too_large(limit),
        multer::Error::StreamReadFailed(e) if e.is::<PartHeadersTooLarge>() => {
            RegistryError::UploadInvalid(format!("Invalid multipart body: {e}"))
        }
        multer::Error::StreamReadFailed(e) => body_error(&*e),
        other => RegistryError::UploadInvalid(format!("Invalid multipart body: {other}")),
    };
    let mut staged: Option<StagedUpload> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(invalid)? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let mut seen = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(invalid)? {
                seen += chunk.len() as u64;
                if seen > MAX_FIELD_BYTES {
                    return Err(RegistryError::UploadInvalid(format!(
                        "Invalid multipart body: a non-file field is larger than {MAX_FIELD_BYTES} bytes"
                    )));
                }
            }
            continue;
        };
        if staged.is_some() {
            return Err(RegistryError::UploadInvalid("Uploading multiple files are not allowed".to_owned()));
        }
        let file = NamedTempFile::new_in(state.registrar.staging_dir()).map_err(RegistryError::internal)?;
        let mut writer = tokio::fs::File::from_std(file.as_file().try_clone().map_err(RegistryError::internal)?);
        while let Some(chunk) = field.chunk().await.map_err(invalid)? {
            writer.write_all(&chunk).await.map_err(RegistryError::internal)?;
        }
        writer.flush().await.map_err(RegistryError::internal)?;
        staged = Some(StagedUpload { file, file_name });
    }
    staged.ok_or_else(|| {
        RegistryError::UploadInvalid("No file was uploaded: send the connector archive as a file part".to_owned())
    })
}
