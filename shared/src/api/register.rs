//! `POST /v2/connector/register`: a multipart upload whose first file part is the archive.

use std::io::Write;

use futures_util::stream;
use http::header::CONTENT_TYPE;
use tempfile::NamedTempFile;

use super::{Api, RegisterState, Response, body_bytes, error_response, success_response};
use crate::error::RegistryError;
use crate::registry::StagedUpload;

pub const REGISTERED_MESSAGE: &str = "connector registered successfully.";

/// Non-file fields are ignored, but not without bound.
const MAX_FIELD_BYTES: u64 = 64 * 1024;

pub async fn handle(state: &RegisterState, request: lambda_http::Request) -> Response {
    match register(state, request).await {
        Ok(()) => success_response(Api::ConnectorRegister, None, serde_json::json!({ "message": REGISTERED_MESSAGE })),
        Err(error) => error_response(Api::ConnectorRegister, None, &error),
    }
}

async fn register(state: &RegisterState, request: lambda_http::Request) -> Result<(), RegistryError> {
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media_type != "multipart/form-data" {
        return Err(RegistryError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data with the connector archive as a file part".to_owned(),
        ));
    }
    let boundary = multer::parse_boundary(&content_type).map_err(|_| {
        RegistryError::UploadInvalid("Invalid multipart body: the Content-Type has no boundary".to_owned())
    })?;
    let body = body_bytes(request.into_body());
    if body.len() as u64 > state.max_body_bytes {
        return Err(payload_too_large(state.max_body_bytes));
    }
    let upload = stage_first_file(state, body, boundary).await?;
    state.registrar.register(upload).await.map(|_| ())
}

pub(crate) fn payload_too_large(limit: u64) -> RegistryError {
    RegistryError::PayloadTooLarge(format!("Request body exceeds the upload limit of {limit} bytes"))
}

/// Writes the first file part to a staging file, and checks that no other file part follows.
async fn stage_first_file(
    state: &RegisterState,
    body: bytes::Bytes,
    boundary: String,
) -> Result<StagedUpload, RegistryError> {
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(state.max_body_bytes).per_field(state.max_body_bytes));
    let mut multipart = multer::Multipart::with_constraints(
        stream::once(async move { Ok::<_, std::convert::Infallible>(body) }),
        boundary,
        constraints,
    );
    let invalid = |e: multer::Error| RegistryError::UploadInvalid(format!("Invalid multipart body: {e}"));
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
        let mut file = NamedTempFile::new_in(state.registrar.staging_dir()).map_err(RegistryError::internal)?;
        while let Some(chunk) = field.chunk().await.map_err(invalid)? {
            file.write_all(&chunk).map_err(RegistryError::internal)?;
        }
        file.flush().map_err(RegistryError::internal)?;
        staged = Some(StagedUpload { file, file_name });
    }
    staged.ok_or_else(|| {
        RegistryError::UploadInvalid("No file was uploaded: send the connector archive as a file part".to_owned())
    })
}
