//! `registry-server`: every route of the registry on one port, running the very handlers the
//! Lambda functions run, over the embedded store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Limited};
use registry_shared::adapters::aws;
use registry_shared::api::{self, AppState, RegisterState, Route, error_response, route_not_found, route_of};
use registry_shared::auth::Authenticator;
use registry_shared::distribution::Limits;
use registry_shared::error::RegistryError;
use registry_shared::registry::{ArchiveStore, Catalog, Registrar, RowStore};
use tokio::net::TcpListener;

/// Bodies of routes that take JSON are small; only register carries an archive.
pub const MAX_JSON_BODY_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub backend: Backend,
    pub max_upload_bytes: u64,
    pub limits: Limits,
    /// Who may call what; `Authenticator::Open` only on loopback.
    pub auth: Authenticator,
}

/// Where the registry keeps archives and rows.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Files and a redb database under one data folder.
    Embedded { data_dir: PathBuf },
    /// S3 and DynamoDB, through the standard AWS configuration chain (`AWS_ENDPOINT_URL` included).
    Aws {
        table: String,
        bucket: String,
        /// Prepended to every archive key (`<prefix>connector-registry/<stored name>`).
        key_prefix: String,
        /// Create the table (with its indexes) and the bucket when they are missing.
        create_missing: bool,
    },
}

/// Opens the stores of the configured backend.
pub async fn open_state(config: &ServerConfig) -> anyhow::Result<AppState> {
    let (archives, rows) = open_stores(&config.backend).await?;
    Ok(AppState {
        register: RegisterState {
            registrar: Registrar::new(archives, rows.clone(), config.limits),
            max_body_bytes: config.max_upload_bytes,
        },
        catalog: Catalog::new(rows),
    })
}

async fn open_stores(backend: &Backend) -> anyhow::Result<(Arc<dyn ArchiveStore>, Arc<dyn RowStore>)> {
    match backend {
        Backend::Embedded { data_dir } => registry_shared::adapters::embedded::open_stores(data_dir)
            .with_context(|| format!("opening the data folder {}", data_dir.display())),
        Backend::Aws { table, bucket, key_prefix, create_missing } => {
            let sdk = aws::sdk_config().await;
            let rows = aws::DynamoRowStore::new(&sdk, table);
            let archives = aws::S3ArchiveStore::new(&sdk, bucket, key_prefix).context("creating the staging folder")?;
            if *create_missing {
                rows.create_table_if_missing().await.with_context(|| format!("creating the table {table}"))?;
                archives.create_bucket_if_missing().await.with_context(|| format!("creating the bucket {bucket}"))?;
            }
            Ok((Arc::new(archives), Arc::new(rows)))
        }
    }
}

/// What the request handler needs: the routes' state and the access control in front of them.
#[derive(Clone)]
struct Served {
    state: AppState,
    auth: Authenticator,
}

pub fn app(state: AppState, auth: Authenticator) -> Router {
    Router::new().fallback(dispatch).layer(middleware::from_fn(log_request)).with_state(Served { state, auth })
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    auth: Authenticator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, app(state, auth)).with_graceful_shutdown(shutdown).await.context("serving HTTP")
}

/// A server started in the background, for tests and embedding.
pub struct RunningServer {
    pub addr: SocketAddr,
    catalog: Catalog,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let state = open_state(&config).await?;
        let catalog = state.catalog.clone();
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(listener, state, config.auth.clone(), async move {
            let _ = rx.await;
        }));
        Ok(Self { addr, catalog, shutdown: Some(tx), task })
    }

    /// The rows the server serves, read directly (for checks behind its access control).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Stops accepting, waits for requests in flight, and releases the data folder.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.context("server task")?
    }
}

/// The one handler: finds the route, reads the body within its limit, and hands a
/// `lambda_http::Request` to the shared handler, exactly as a Lambda function would.
async fn dispatch(State(Served { state, auth }): State<Served>, request: Request) -> Response {
    let Some(route) = route_of(request.method(), request.uri().path()) else {
        return into_axum(route_not_found());
    };
    let api = route.api();
    // Refused callers are answered before their body is read.
    if let Err(refused) = auth.admit(api, &request) {
        return into_axum(error_response(api, None, &refused));
    }
    let limit = match route {
        Route::Register => state.register.max_body_bytes,
        Route::Read | Route::List => MAX_JSON_BODY_BYTES,
    };
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return into_axum(error_response(api, None, &too_large(limit)));
    }
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, limit as usize).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return into_axum(error_response(api, None, &too_large(limit)));
        }
        Err(e) => {
            tracing::info!(error = %e, "request body could not be read");
            let error = RegistryError::UploadInvalid("The request body could not be read".to_owned());
            return into_axum(error_response(api, None, &error));
        }
    };
    let request = http::Request::from_parts(parts, lambda_http::Body::Binary(Vec::from(bytes)));
    into_axum(api::handle(&state, request).await)
}

fn too_large(limit: u64) -> RegistryError {
    RegistryError::PayloadTooLarge(format!("Request body exceeds the limit of {limit} bytes"))
}

fn into_axum(response: api::Response) -> Response {
    response.map(|body| match body {
        lambda_http::Body::Text(text) => axum::body::Body::from(text),
        lambda_http::Body::Binary(bytes) => axum::body::Body::from(bytes),
        _ => axum::body::Body::empty(),
    })
}

/// One log line per request.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
