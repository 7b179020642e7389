//! The embedded store's presigned URLs: `PUT /files/connector-registry-uploads/<stored name>` and
//! `GET /files/connector-registry/<stored name>`, signed and expiring, so that uploads of any size
//! stream to disk and can then be registered by reference, just as with S3 (plain HTTP answers,
//! like S3's, not the Obsrv envelope). Uploads are never served: only registered archives are.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::{Method, StatusCode};
use registry_shared::adapters::embedded::FileArchiveStore;
use registry_shared::error::StoreError;
use registry_shared::registry::{ARCHIVE_PREFIX, ArchiveKey, ArchiveStore, StoredName, UPLOAD_PREFIX};
use tokio::io::AsyncWriteExt;

pub(crate) async fn serve(store: &FileArchiveStore, path: String, max_bytes: u64, request: Request) -> Response {
    // Uploads are only written, archives only read.
    let (allowed, key) = if let Some(name) = path.strip_prefix(&format!("{UPLOAD_PREFIX}/")).and_then(StoredName::parse)
    {
        (Method::PUT, name.upload_key())
    } else if let Some(name) = path.strip_prefix(&format!("{ARCHIVE_PREFIX}/")).and_then(StoredName::parse) {
        (Method::GET, name.key())
    } else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let method = request.method().clone();
    if method != allowed {
        let hint = if allowed == Method::PUT { "use PUT to upload" } else { "use GET to download" };
        return (StatusCode::METHOD_NOT_ALLOWED, [(http::header::ALLOW, allowed.as_str())], format!("{hint}\n"))
            .into_response();
    }
    if let Err(why) = store.verify(method.as_str(), &key, request.uri().query().unwrap_or_default()) {
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let outcome =
        if method == Method::PUT { upload(store, &key, max_bytes, request).await } else { download(store, &key).await };
    outcome.unwrap_or_else(|(status, message)| (status, format!("{message}\n")).into_response())
}

/// Every answer of the file routes, content-typed and never sniffed.
pub(crate) fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

type Failure = (StatusCode, String);

async fn upload(
    store: &FileArchiveStore,
    key: &ArchiveKey,
    max_bytes: u64,
    request: Request,
) -> Result<Response, Failure> {
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "staging an upload failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be stored".to_owned())
    };
    let staged = tempfile::NamedTempFile::new_in(store.staging_dir()).map_err(internal)?;
    let mut writer = tokio::fs::File::from_std(staged.as_file().try_clone().map_err(internal)?);
    let mut body = request.into_body().into_data_stream();
    let mut written = 0u64;
    let cut_off = |e: axum::Error| {
        if registry_shared::api::is_slow_body(&e) {
            (StatusCode::REQUEST_TIMEOUT, "the upload arrived too slowly".to_owned())
        } else {
            (StatusCode::BAD_REQUEST, "the upload was cut off".to_owned())
        }
    };
    while let Some(chunk) = body.try_next().await.map_err(cut_off)? {
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("archives are limited to {max_bytes} bytes")));
        }
        writer.write_all(&chunk).await.map_err(internal)?;
    }
    writer.flush().await.map_err(internal)?;
    match store.put(key, staged.path()).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(StoreError::AlreadyExists) => Err((StatusCode::CONFLICT, "this URL was used already".to_owned())),
        Err(e) => {
            tracing::error!(error = %registry_shared::error::error_chain(&e), "storing an upload failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be stored".to_owned()))
        }
    }
}

/// An archive, as a download of its type that browsers neither sniff nor render.
async fn download(store: &FileArchiveStore, key: &ArchiveKey) -> Result<Response, Failure> {
    match tokio::fs::File::open(store.path_of(key)).await {
        Ok(file) => {
            let headers = [
                (http::header::CONTENT_TYPE, key.media_type().to_owned()),
                (http::header::CONTENT_DISPOSITION, key.content_disposition()),
            ];
            Ok((headers, Body::from_stream(tokio_util::io::ReaderStream::new(file))).into_response())
        }
        Err(_) => Err((StatusCode::NOT_FOUND, "no such file".to_owned())),
    }
}
