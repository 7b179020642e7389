//! `registry-server`: every route of the registry on one port, running the very handlers the
//! Lambda functions run, over the embedded store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Limited};
use registry_shared::adapters::aws;
use registry_shared::adapters::embedded::{
    AUDIT_EVENTS_FILE, FileArchiveStore, JsonLines, JsonLinesSink, RedbRowStore,
};
use registry_shared::adapters::postgres::PostgresObsrvTable;
use registry_shared::api::{
    self, AppState, FilesState, RegisterState, Route, error_response, route_not_found, route_of,
};
use registry_shared::auth::Authenticator;
use registry_shared::distribution::Limits;
use registry_shared::domain::Versions;
use registry_shared::error::RegistryError;
use registry_shared::registry::audit::deliver_pending;
use registry_shared::registry::obsrv::{
    ArchiveCopy, MIRROR_INTERVAL, Obsrv, ObsrvArchives, SignallingRows, run_mirror,
};
use registry_shared::registry::{ArchiveStore, Catalog, GatedArchives, GatedRows, InFlightLimit, Registrar, RowStore};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, Semaphore};

pub mod client;
mod connections;
mod files;
pub mod memory;

pub use connections::HttpLimits;
use connections::{MinRate, serve_connections};

/// The OpenAPI document of every route, served at `/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// Bodies of routes that take JSON are small; only register carries an archive.
pub const MAX_JSON_BODY_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// DynamoDB and S3 take far more; the bound is for stand-ins and throttled tables.
pub const DEFAULT_MAX_STORE_REQUESTS: usize = 64;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub backend: Backend,
    pub max_upload_bytes: u64,
    pub limits: Limits,
    /// Who may call what; `Authenticator::Open` only on loopback.
    pub auth: Authenticator,
    /// How long generate-url's URLs stay valid.
    pub url_expiry: Duration,
    /// Where clients reach this server, for the embedded store's upload and download URLs;
    /// `http://<listen address>` when not set.
    pub public_url: Option<String>,
    /// Header size, slow clients, concurrent uploads.
    pub http: HttpLimits,
    /// Embedded backend: where the audit events of registrations go; `None` is
    /// `<data dir>/audit-events.jsonl`. (On AWS the table's stream delivers them.)
    pub audit_events: Option<JsonLines>,
    /// An Obsrv installation's PostgreSQL (a libpq URL), whose `connector_registry` table the
    /// server keeps in step with the registry.
    pub obsrv_postgres: Option<String>,
    /// Obsrv's own archive container (a folder, or `s3://bucket/prefix`): with the mirror, each
    /// row's archive is copied into its `connector-registry/` before the row is written, so
    /// that Obsrv's own url-access serves it.
    pub obsrv_archives: Option<String>,
    /// Whether a registered version may be registered again with other bytes.
    pub versions: Versions,
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
        /// S3 and DynamoDB calls in flight at once; more wait their turn in the server.
        max_store_requests: usize,
    },
}

/// Everything the server serves: the routes' state, and the embedded store when there is one
/// (it also serves the upload and download URLs it signs).
#[derive(Clone)]
pub struct Served {
    pub state: AppState,
    files: Option<Arc<FileArchiveStore>>,
    max_archive_bytes: u64,
    http: HttpLimits,
    uploads: Arc<Semaphore>,
    audit: Option<Arc<AuditDispatch>>,
    mirror: Option<Arc<ObsrvMirror>>,
}

/// The mirror into Obsrv's PostgreSQL table (`registry::obsrv`).
struct ObsrvMirror {
    rows: Arc<dyn RowStore>,
    obsrv: Obsrv,
    committed: Arc<Notify>,
}

/// Obsrv's archive container at `location`: a folder, or `s3://bucket/prefix`.
pub async fn obsrv_archives_at(location: &str) -> anyhow::Result<Arc<dyn ObsrvArchives>> {
    Ok(match location.strip_prefix("s3://") {
        Some(location) => {
            let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
            let prefix =
                if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
            let sdk = aws::sdk_config().await;
            Arc::new(aws::S3ArchiveStore::new(&sdk, bucket, prefix).context("creating the staging folder")?)
        }
        None => Arc::new(registry_shared::adapters::obsrv_folder::ObsrvFolder::new(location)),
    })
}

/// The embedded backend's delivery of audit events: from the database's outbox to the JSON lines.
struct AuditDispatch {
    outbox: Arc<RedbRowStore>,
    sink: JsonLinesSink,
}

/// How long an undelivered event waits before it is tried again (a commit tries at once).
const AUDIT_RETRY: Duration = Duration::from_secs(5);

impl AuditDispatch {
    /// Delivers what is pending at start (left by a process that stopped), then after every
    /// commit, until `stop`; then once more.
    async fn run(self: Arc<Self>, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let commits = self.outbox.commits();
        loop {
            self.deliver().await;
            tokio::select! {
                () = commits.notified() => {}
                () = tokio::time::sleep(AUDIT_RETRY) => {}
                _ = &mut stop => break,
            }
        }
        self.deliver().await;
    }

    async fn deliver(&self) {
        if let Err(error) = deliver_pending(&*self.outbox, &self.sink).await {
            tracing::warn!(error = %registry_shared::error::error_chain(&error), "audit events wait for delivery");
        }
    }
}

/// Opens the stores, then listens: until they are ready (the AWS backend may first create its
/// table and bucket) connections are refused, so that an open port means a ready server. The
/// port is bound from the start, so that the stores know the address (port 0 included).
pub async fn bind_when_ready(config: &ServerConfig) -> anyhow::Result<(TcpListener, Served)> {
    let bind = || -> std::io::Result<TcpSocket> {
        let socket = if config.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As `TcpListener::bind` does: a restarted server need not wait for old connections.
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        Ok(socket)
    };
    let socket = bind().with_context(|| format!("binding {}", config.listen))?;
    let served = open_state(config, socket.local_addr()?).await?;
    let listener = socket.listen(LISTEN_BACKLOG).with_context(|| format!("listening on {}", config.listen))?;
    Ok((listener, served))
}

/// Connections waiting to be accepted, as `TcpListener::bind` has it.
const LISTEN_BACKLOG: u32 = 1024;

/// Opens the stores of the configured backend; `addr` is where the server listens.
pub async fn open_state(config: &ServerConfig, addr: SocketAddr) -> anyhow::Result<Served> {
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let (archives, rows, files, outbox) = open_stores(&config.backend, &public_url).await?;
    let (rows, mirror) = match &config.obsrv_postgres {
        None => (rows, None),
        Some(url) => {
            let table = PostgresObsrvTable::new(url).context("--obsrv-postgres")?;
            tracing::info!(table = ?table, "mirroring into Obsrv's connector_registry table");
            let committed = Arc::new(Notify::new());
            let rows: Arc<dyn RowStore> = Arc::new(SignallingRows { inner: rows, committed: committed.clone() });
            let archives = match &config.obsrv_archives {
                Some(location) => Some(ArchiveCopy {
                    from: archives.clone(),
                    to: obsrv_archives_at(location).await.context("--obsrv-archives")?,
                }),
                None => None,
            };
            let obsrv = Obsrv { table: Arc::new(table), archives };
            (rows.clone(), Some(Arc::new(ObsrvMirror { rows, obsrv, committed })))
        }
    };
    let audit = match (&config.backend, outbox) {
        (Backend::Embedded { data_dir }, Some(outbox)) => {
            let target =
                config.audit_events.clone().unwrap_or_else(|| JsonLines::File(data_dir.join(AUDIT_EVENTS_FILE)));
            Some(Arc::new(AuditDispatch { outbox, sink: JsonLinesSink::new(target) }))
        }
        _ => None,
    };
    let state = AppState {
        register: RegisterState {
            registrar: {
                let registrar =
                    Registrar::new(archives.clone(), rows.clone(), config.limits).with_versions(config.versions);
                match &mirror {
                    Some(mirror) => registrar.feeding_obsrv().guarding_obsrv_instances(mirror.obsrv.table.clone()),
                    None => registrar,
                }
            },
            max_body_bytes: config.max_upload_bytes,
        },
        catalog: Catalog::new(rows),
        files: FilesState { archives, expiry: config.url_expiry },
        auth: config.auth.clone(),
    };
    Ok(Served {
        state,
        files,
        max_archive_bytes: config.limits.max_archive_bytes,
        http: config.http,
        uploads: Arc::new(Semaphore::new(config.http.max_concurrent_uploads)),
        audit,
        mirror,
    })
}

/// The row store of a backend, for one-shot commands (the server itself opens every store).
pub async fn open_rows(backend: &Backend) -> anyhow::Result<Arc<dyn RowStore>> {
    Ok(open_archives_and_rows(backend).await?.1)
}

/// The archive and row stores of a backend, for one-shot commands.
pub async fn open_archives_and_rows(backend: &Backend) -> anyhow::Result<(Arc<dyn ArchiveStore>, Arc<dyn RowStore>)> {
    let (archives, rows, _, _) = open_stores(backend, "http://127.0.0.1").await?;
    Ok((archives, rows))
}

type Stores = (Arc<dyn ArchiveStore>, Arc<dyn RowStore>, Option<Arc<FileArchiveStore>>, Option<Arc<RedbRowStore>>);

async fn open_stores(backend: &Backend, public_url: &str) -> anyhow::Result<Stores> {
    match backend {
        Backend::Embedded { data_dir } => {
            let (files, rows) = registry_shared::adapters::embedded::open_stores(data_dir, public_url)
                .with_context(|| format!("opening the data folder {}", data_dir.display()))?;
            Ok((files.clone(), rows.clone(), Some(files), Some(rows)))
        }
        Backend::Aws { table, bucket, key_prefix, create_missing, max_store_requests } => {
            let sdk = aws::sdk_config().await;
            let rows = aws::DynamoRowStore::new(&sdk, table);
            let archives = aws::S3ArchiveStore::new(&sdk, bucket, key_prefix).context("creating the staging folder")?;
            if *create_missing {
                rows.create_table_if_missing().await.with_context(|| format!("creating the table {table}"))?;
                archives.create_bucket_if_missing().await.with_context(|| format!("creating the bucket {bucket}"))?;
            }
            let gate = Arc::new(InFlightLimit::new(*max_store_requests));
            let archives = GatedArchives { inner: Arc::new(archives), gate: gate.clone() };
            let rows = GatedRows { inner: Arc::new(rows), gate };
            Ok((Arc::new(archives), Arc::new(rows), None, None))
        }
    }
}

pub fn app(served: Served) -> Router {
    Router::new().fallback(dispatch).layer(middleware::from_fn(log_request)).with_state(served)
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    served: Served,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = served.http;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let audit = served.audit.clone().map(|audit| tokio::spawn(audit.run(stopped)));
    let (stop_mirror, mirror_stopped) = tokio::sync::oneshot::channel();
    let mirror = served.mirror.clone().map(|mirror| {
        let ObsrvMirror { rows, obsrv, committed } = &*mirror;
        tokio::spawn(run_mirror(rows.clone(), obsrv.clone(), committed.clone(), MIRROR_INTERVAL, mirror_stopped))
    });
    serve_connections(listener, app(served), limits, shutdown).await;
    // The events of the last requests are delivered, the Obsrv table caught up, and the database
    // released, before this ends.
    if let Some(mirror) = mirror {
        let _ = stop_mirror.send(());
        mirror.await.context("the Obsrv mirror")?;
    }
    if let Some(audit) = audit {
        let _ = stop.send(());
        audit.await.context("the audit event dispatcher")?;
    }
    Ok(())
}

/// A server started in the background, for tests and embedding.
pub struct RunningServer {
    pub addr: SocketAddr,
    catalog: Catalog,
    archives: Arc<dyn ArchiveStore>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let (listener, served) = bind_when_ready(&config).await?;
        let addr = listener.local_addr()?;
        let catalog = served.state.catalog.clone();
        let archives = served.state.files.archives.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(listener, served, async move {
            let _ = rx.await;
        }));
        Ok(Self { addr, catalog, archives, shutdown: Some(tx), task })
    }

    /// The rows the server serves, read directly (for checks behind its access control).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The archives the server serves, read and written directly.
    pub fn archives(&self) -> &Arc<dyn ArchiveStore> {
        &self.archives
    }

    /// Stops accepting, waits for requests in flight, and releases the data folder.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.context("server task")?
    }
}

/// The one handler. A refusal of a request that carries a body (unknown route, access denied,
/// too large, too busy, a failed registration) may come before the body was read to its end, and
/// such a connection cannot carry another request: the answer says `Connection: close`, so that
/// clients do not send their next request on it.
async fn dispatch(State(served): State<Served>, request: Request) -> Response {
    let carries_body = request.headers().contains_key(http::header::TRANSFER_ENCODING)
        || request.headers().get(CONTENT_LENGTH).is_some_and(|length| length != "0");
    let mut response = answer(served, request).await;
    if carries_body && !response.status().is_success() {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    response
}

/// Finds the route, reads the body within its limit, and hands a `lambda_http::Request` to the
/// shared handler, exactly as a Lambda function would.
async fn answer(served: Served, request: Request) -> Response {
    let Served { state, files, max_archive_bytes, http: limits, uploads, audit: _, mirror: _ } = served;
    if request.method() == http::Method::GET && request.uri().path() == "/openapi.yaml" {
        return ([(http::header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response();
    }
    // Every body is read at no less than the minimum rate: a trickling client gets 408.
    let request = request.map(|body| {
        axum::body::Body::from_stream(MinRate::new(body.into_data_stream(), limits.body_window, limits.min_body_rate))
    });
    // Uploads hold a staging file and a core each; beyond the limit, a retry later succeeds.
    let busy = "Too many uploads in progress, please retry shortly";
    let retry_after = [(http::header::RETRY_AFTER, "1")];
    if let (Some(store), Some(key)) = (&files, request.uri().path().strip_prefix("/files/")) {
        let is_upload = request.method() == http::Method::PUT;
        let _upload = match is_upload.then(|| uploads.try_acquire_owned()).transpose() {
            Ok(permit) => permit,
            // Plain text, as the signed URLs answer (like S3's SlowDown).
            Err(_) => return (http::StatusCode::SERVICE_UNAVAILABLE, retry_after, format!("{busy}\n")).into_response(),
        };
        return files::nosniff(files::serve(store, key.to_owned(), max_archive_bytes, request).await);
    }
    let Some(route) = route_of(request.method(), request.uri().path()) else {
        return into_axum(route_not_found());
    };
    // Refused callers are answered before their body is read. The system route's guard here is
    // the loopback interface: a pod or sidecar on this machine needs no token (others need a
    // reader's, as for generate-url's read URLs).
    let system_caller = route == Route::UrlAccess && from_loopback(&request);
    let caller = if system_caller {
        None
    } else {
        match state.auth.admit(route.roles(), &request) {
            Ok(caller) => Some(caller),
            Err(refused) => return into_axum(error_response(route, None, &refused)),
        }
    };
    let limit = match route {
        Route::Register => state.register.max_body_bytes,
        Route::Read | Route::List | Route::GenerateUrl | Route::UrlAccess | Route::StatusTransition => {
            MAX_JSON_BODY_BYTES
        }
    };
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return into_axum(error_response(route, None, &too_large(limit)));
    }
    let (parts, body) = request.into_parts();
    if route == Route::Register {
        let Ok(_upload) = uploads.try_acquire_owned() else {
            let refused = into_axum(error_response(route, None, &RegistryError::Busy(busy.to_owned())));
            return (retry_after, refused).into_response();
        };
        // Archives stream straight to the staging folder: memory stays flat whatever their size.
        return into_axum(
            api::register_stream(&state.register, &parts.headers, body.into_data_stream(), caller.as_ref()).await,
        );
    }
    let bytes = match Limited::new(body, limit as usize).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return into_axum(error_response(route, None, &too_large(limit)));
        }
        Err(e) => {
            tracing::info!(error = %e, "request body could not be read");
            return into_axum(error_response(route, None, &api::body_error(&*e)));
        }
    };
    let mut request = http::Request::from_parts(parts, lambda_http::Body::Binary(Vec::from(bytes)));
    // The handlers that record who called (status transitions) find the caller where the Lambda
    // entry puts it.
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    into_axum(api::handle(&state, request).await)
}

/// Whether the request came over a loopback connection (not merely to a loopback address).
fn from_loopback<B>(request: &http::Request<B>) -> bool {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .is_some_and(|peer| peer.0.ip().to_canonical().is_loopback())
}

fn too_large(limit: u64) -> RegistryError {
    RegistryError::PayloadTooLarge(format!("Request body exceeds the limit of {limit} bytes"))
}

pub(crate) fn into_axum(response: api::Response) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_callers_over_loopback_are_the_system_route_s_callers() {
        let from = |peer: &str| {
            let mut request = http::Request::new(());
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            request
        };
        for peer in ["127.0.0.1:5000", "127.1.2.3:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert!(from_loopback(&from(peer)), "{peer}");
        }
        for peer in ["192.0.2.10:5000", "172.17.0.2:5000", "[::ffff:192.0.2.10]:5000", "[fd00::2]:5000"] {
            assert!(!from_loopback(&from(peer)), "{peer}");
        }
        assert!(!from_loopback(&http::Request::new(())), "a request with no known peer is not from loopback");
    }
}
