use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use registry_server::client::{
    self, DEFAULT_MULTIPART_LIMIT, DEFAULT_URL, Failure, Registry, Transition, check_archive, needs_upload_url,
};
use registry_server::{
    Backend, DEFAULT_MAX_STORE_REQUESTS, DEFAULT_MAX_UPLOAD_BYTES, HttpLimits, ServerConfig, bind_when_ready, serve,
};
use registry_shared::adapters::embedded::JsonLines;
use registry_shared::auth::{Authenticator, JwtVerifier, RolesClaim, TokenRules};
use registry_shared::distribution::Limits;
use registry_shared::distribution::reader::ReadError;
use registry_shared::domain::Versions;
use registry_shared::registry::{Registrar, register_upload};

/// The Obsrv connector registry, served locally over an embedded store.
#[derive(Parser)]
#[command(name = "registry-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a connector distribution with the registry's rules and prints the rows it would
    /// create; exits with 1 if it is invalid.
    Validate {
        /// The archive (.tar.gz, .tgz, .tar or .zip).
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Checks a connector distribution as `validate` does, then registers it with a registry: in
    /// one multipart request, or through an upload URL and a register by reference when it is
    /// larger than --multipart-limit. Prints the register answer's result with the ids of the
    /// rows created; exits with 1 when the package is invalid or the registry refuses it (its
    /// message on stderr), 2 when the file cannot be read or the registry cannot be reached.
    Publish {
        /// The archive (.tar.gz, .tgz, .tar or .zip).
        file: PathBuf,
        /// Always register through an upload URL, whatever the archive's size.
        #[arg(long)]
        by_reference: bool,
        /// Largest archive sent in one register request, in bytes; larger ones go through an
        /// upload URL. The default fits API Gateway's 6 MB.
        #[arg(long, env = "REGISTRY_MULTIPART_LIMIT", default_value_t = DEFAULT_MULTIPART_LIMIT)]
        multipart_limit: u64,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Changes the status of a registered version (a row) with a registry.
    Connector {
        #[command(subcommand)]
        action: ConnectorAction,
    },
    /// Registers archives uploaded under the incoming prefix of an S3 bucket, exactly as the
    /// register-upload function does for S3 events: to re-drive events from its dead-letter
    /// queue, or to register uploads by hand. Prints one outcome per key.
    RegisterUpload {
        /// The DynamoDB table of the rows.
        #[arg(long, env = "REGISTRY_TABLE")]
        table: String,
        /// The bucket the uploads are in, which also keeps the archives.
        #[arg(long, env = "REGISTRY_BUCKET")]
        bucket: String,
        #[arg(long, env = "REGISTRY_KEY_PREFIX", default_value = "")]
        key_prefix: String,
        /// Object keys of the uploads, e.g. incoming/kafka-connector.tar.gz.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Puts every audit event still waiting in the table's outbox to EventBridge and removes it,
    /// as the audit-events function does from the stream: after its failure queue filled up, once
    /// the cause is fixed. Prints how many were delivered.
    DeliverAuditEvents {
        /// The DynamoDB table of the rows.
        #[arg(long, env = "REGISTRY_TABLE")]
        table: String,
        /// The EventBridge bus (name or ARN).
        #[arg(long, env = "REGISTRY_EVENT_BUS", default_value = "default")]
        event_bus: String,
    },
    /// Compares Obsrv's `connector_registry` table with the registry (the backend the other
    /// settings name), column by column, and repairs it: rows missing or differing are written as
    /// the registry has them, rows the registry does not have are removed unless a connector
    /// instance references them. Prints every difference; exits with 1 when a difference was
    /// found with --dry-run.
    SyncObsrv {
        /// Obsrv's PostgreSQL, as a libpq URL (postgres://user:password@host:5432/database).
        #[arg(long, env = "REGISTRY_OBSRV_POSTGRES")]
        postgres: String,
        /// Only print the differences.
        #[arg(long)]
        dry_run: bool,
    },
    /// Brings an Obsrv installation's registrations into the registry (the backend the other
    /// settings name): every row of its `connector_registry` table, kept as it is, with its
    /// archive (`connector-registry/<source_url>` under --archives) read again by this
    /// registry's rules and stored. Prints a report; exits with 1 when a row was refused.
    /// Importing again changes nothing.
    ImportObsrv {
        /// Obsrv's PostgreSQL, as a libpq URL.
        #[arg(long, env = "REGISTRY_OBSRV_POSTGRES")]
        postgres: String,
        /// Where Obsrv keeps the archives: a folder holding `connector-registry/`, or
        /// s3://BUCKET/PREFIX (its container and prefix).
        #[arg(long)]
        archives: String,
        /// Only check and report; nothing is written.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copies a DynamoDB table of the registry's first layout (partition key only, lists through
    /// secondary indexes) into a table of this layout, created when missing. Run once, after the
    /// stack update that replaced the table (docs/dynamodb-design.md, Migrating the table).
    MigrateTable {
        /// The table of the first layout, e.g. the one the stack update kept.
        #[arg(long)]
        from: String,
        /// The new table, e.g. the stack's RegistryTableName output.
        #[arg(long)]
        to: String,
    },
    /// Removes, from the backend the other settings name, the archives under connector-registry/
    /// that no row references and the uploads under connector-registry-uploads/ never registered,
    /// when older than --older-than: what the gc-archives function does every day on AWS. Logs
    /// each one removed (or, with --dry-run, that would be) and prints the counts.
    GcArchives {
        /// How long ago an archive or upload must have been written to go, so that a
        /// registration in flight never loses its archive: a number and s, m, h or d.
        #[arg(long, default_value = "1d", value_parser = registry_shared::registry::gc::parse_duration)]
        older_than: Duration,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The status transitions of `connector`. Each prints the registry's answer; exits with 1 when
/// the registry refuses (an unknown id, or a transition the row's status does not allow), 2 when
/// it cannot be reached.
#[derive(Subcommand)]
enum ConnectorAction {
    /// Makes a version Live (a promotion, or a rollback to an older version); the connector's
    /// Live version retires.
    Promote(TransitionArgs),
    /// Retires a version; the connector may be left with no Live version.
    Retire(TransitionArgs),
    /// Removes a version that is not Live.
    Delete(TransitionArgs),
}

#[derive(clap::Args)]
struct TransitionArgs {
    /// The row's id, `<connector_id>-<version>`, e.g. kafka-connector-1.0.0.
    id: String,
    /// Why, kept with the row and in the audit event.
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Which registry a client command calls, and as whom.
#[derive(clap::Args)]
struct RegistryArgs {
    /// The registry: the local server's address, or the stack's ApiUrl output.
    #[arg(long, env = "REGISTRY_URL", default_value = DEFAULT_URL)]
    url: String,
    /// A token with the roles the call needs, sent as `Authorization: Bearer <token>`; better
    /// given in the environment than on the command line, where other users can see it.
    #[arg(long, env = "REGISTRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl RegistryArgs {
    fn registry(&self) -> anyhow::Result<Registry> {
        Registry::new(&self.url, self.token.as_deref())
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where archives and rows live.
    #[arg(long, env = "REGISTRY_BACKEND", value_enum, default_value_t = BackendKind::Embedded)]
    backend: BackendKind,
    /// Embedded backend: folder of the archives and the row database; created when missing.
    #[arg(long, env = "REGISTRY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// AWS backend: the DynamoDB table of the rows.
    #[arg(long, env = "REGISTRY_TABLE", required_if_eq("backend", "aws"))]
    table: Option<String>,
    /// AWS backend: the S3 bucket of the archives.
    #[arg(long, env = "REGISTRY_BUCKET", required_if_eq("backend", "aws"))]
    bucket: Option<String>,
    /// AWS backend: a prefix for every archive key, e.g. `registry/`.
    #[arg(long, env = "REGISTRY_KEY_PREFIX", default_value = "")]
    key_prefix: String,
    /// AWS backend: create the table and the bucket when they are missing.
    #[arg(long, env = "REGISTRY_CREATE_MISSING")]
    create_missing: bool,
    /// AWS backend: S3 and DynamoDB calls in flight at once; more wait their turn in the server
    /// (their timeouts start when they do).
    #[arg(long, env = "REGISTRY_MAX_STORE_REQUESTS", default_value_t = DEFAULT_MAX_STORE_REQUESTS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_store_requests: u64,
    /// Largest register request body accepted; larger ones get 413.
    #[arg(long, env = "REGISTRY_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// RS256 public key (PEM) that tokens must be signed with; without it (or --jwks) the
    /// server runs with no access control.
    #[arg(long, env = "REGISTRY_JWT_PUBLIC_KEY", conflicts_with = "jwks")]
    jwt_public_key: Option<PathBuf>,
    /// A JSON Web Key Set file, instead of one PEM key: tokens pick their key by `kid`.
    #[arg(long, env = "REGISTRY_JWKS")]
    jwks: Option<PathBuf>,
    /// The `iss` tokens must carry; unchecked when not given (the console's tokens have none).
    #[arg(long, env = "REGISTRY_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// The `aud` tokens must carry; unchecked when not given (the console's tokens have none).
    #[arg(long, env = "REGISTRY_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// The claim holding a token's roles: roles, realm_access.roles or
    /// resource_access.<client>.roles (Keycloak).
    #[arg(long, env = "REGISTRY_ROLES_CLAIM", default_value = "roles")]
    roles_claim: RolesClaim,
    /// How long the URLs of POST /v2/files/generate-url stay valid, in seconds (at most 600).
    #[arg(long, env = "REGISTRY_URL_EXPIRY_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=600))]
    url_expiry_seconds: u64,
    /// Embedded backend: the URL clients reach this server at, for upload and download URLs
    /// (default http://<listen address>).
    #[arg(long, env = "REGISTRY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Embedded backend: the file the audit events of registrations are appended to, one JSON
    /// object per line (`-`: stdout); default `<data dir>/audit-events.jsonl`.
    #[arg(long, env = "REGISTRY_AUDIT_EVENTS")]
    audit_events: Option<String>,
    /// An Obsrv installation's PostgreSQL (postgres://user:password@host:5432/database): its
    /// `connector_registry` table is kept in step with the registry, at once after every
    /// registration and every 30 s; registrations never wait for it.
    #[arg(long, env = "REGISTRY_OBSRV_POSTGRES")]
    obsrv_postgres: Option<String>,
    /// With --obsrv-postgres: Obsrv's own archive container (a folder, or s3://BUCKET/PREFIX);
    /// each row's archive is copied under its connector-registry/ before the row is written, so
    /// that Obsrv's own url-access serves it.
    #[arg(long, env = "REGISTRY_OBSRV_ARCHIVES", requires = "obsrv_postgres")]
    obsrv_archives: Option<String>,
    /// Let a registered version be registered again with other bytes, as the original does. By
    /// default a version's content never changes: other bytes are refused with 409.
    #[arg(long, env = "REGISTRY_ALLOW_VERSION_OVERWRITE")]
    allow_version_overwrite: bool,
    /// Log lines as JSON (for collectors) or for humans.
    #[arg(long, env = "REGISTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    http: HttpArgs,
}

/// What one client may do; see `HttpLimits`.
#[derive(clap::Args)]
struct HttpArgs {
    /// Seconds a client has to send a request's head; also closes idle keep-alive connections.
    #[arg(long, env = "REGISTRY_HEADER_TIMEOUT_SECONDS", default_value_t = HttpLimits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_seconds: u64,
    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    #[arg(long, env = "REGISTRY_MAX_HEADER_BYTES", default_value_t = HttpLimits::default().max_header_bytes)]
    max_header_bytes: usize,
    /// Request bodies must deliver --min-body-bytes-per-second in every window this long, or get 408.
    #[arg(long, env = "REGISTRY_BODY_WINDOW_SECONDS", default_value_t = HttpLimits::default().body_window.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    body_window_seconds: u64,
    #[arg(long, env = "REGISTRY_MIN_BODY_BYTES_PER_SECOND", default_value_t = HttpLimits::default().min_body_rate)]
    min_body_bytes_per_second: u64,
    /// Uploads served at once (register and upload URLs); more get 503 with Retry-After.
    #[arg(long, env = "REGISTRY_MAX_CONCURRENT_UPLOADS", default_value_t = HttpLimits::default().max_concurrent_uploads as u64, value_parser = clap::value_parser!(u64).range(1..))]
    max_concurrent_uploads: u64,
}

impl HttpArgs {
    fn limits(&self) -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            max_header_bytes: self.max_header_bytes,
            body_window: Duration::from_secs(self.body_window_seconds),
            min_body_rate: self.min_body_bytes_per_second,
            max_concurrent_uploads: self.max_concurrent_uploads as usize,
            ..HttpLimits::default()
        }
    }
}

#[derive(clap::Args)]
struct LimitArgs {
    /// Largest archive accepted, in bytes.
    #[arg(long, env = "REGISTRY_MAX_ARCHIVE_BYTES", default_value_t = Limits::default().max_archive_bytes)]
    max_archive_bytes: u64,
    /// Largest total size of an archive's entries once inflated, in bytes.
    #[arg(long, env = "REGISTRY_MAX_UNCOMPRESSED_BYTES", default_value_t = Limits::default().max_uncompressed_bytes)]
    max_uncompressed_bytes: u64,
    /// Most entries an archive may hold.
    #[arg(long, env = "REGISTRY_MAX_ENTRIES", default_value_t = Limits::default().max_entries)]
    max_entries: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_archive_bytes: self.max_archive_bytes,
            max_uncompressed_bytes: self.max_uncompressed_bytes,
            max_entries: self.max_entries,
            ..Limits::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    Embedded,
    Aws,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Human,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Validate { file, limits }) => validate(&file, &limits.limits()),
        Some(Command::Publish { file, by_reference, multipart_limit, registry, limits }) => {
            let limits = limits.limits();
            run_outcome("publish", publish(file, by_reference, multipart_limit, registry, limits))
        }
        Some(Command::Connector { action }) => {
            let (transition, args) = match action {
                ConnectorAction::Promote(args) => (Transition::Promote, args),
                ConnectorAction::Retire(args) => (Transition::Retire, args),
                ConnectorAction::Delete(args) => (Transition::Delete, args),
            };
            run_outcome("connector", change_status(transition, args))
        }
        Some(Command::RegisterUpload { table, bucket, key_prefix, keys }) => {
            run_once("register-upload", register_uploads(table, bucket, key_prefix, keys))
        }
        Some(Command::SyncObsrv { postgres, dry_run }) => {
            run_outcome("sync-obsrv", sync_obsrv(backend_of(&cli.serve), postgres, dry_run))
        }
        Some(Command::ImportObsrv { postgres, archives, dry_run }) => {
            let limits = cli.serve.limits.limits();
            run_outcome("import-obsrv", import_obsrv(backend_of(&cli.serve), postgres, archives, limits, dry_run))
        }
        Some(Command::MigrateTable { from, to }) => run_once("migrate-table", migrate_table(from, to)),
        Some(Command::GcArchives { older_than, dry_run }) => {
            run_once("gc-archives", gc_archives(backend_of(&cli.serve), older_than, dry_run))
        }
        Some(Command::DeliverAuditEvents { table, event_bus }) => {
            run_once("deliver-audit-events", deliver_audit_events(table, event_bus))
        }
        None => {
            init_logging(cli.serve.log_format);
            registry_server::memory::limit_arenas();
            let runtime = match registry_server::memory::runtime() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("registry-server: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(cli.serve)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "registry-server stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let auth = authenticator(&args)?;
    let backend = backend_of(&args);
    let config = ServerConfig {
        listen: args.listen,
        backend: backend.clone(),
        max_upload_bytes: args.max_upload_bytes,
        limits: args.limits.limits(),
        auth: auth.clone(),
        url_expiry: Duration::from_secs(args.url_expiry_seconds),
        public_url: args.public_url,
        http: args.http.limits(),
        obsrv_postgres: args.obsrv_postgres.clone(),
        obsrv_archives: args.obsrv_archives.clone(),
        versions: if args.allow_version_overwrite { Versions::Overwritable } else { Versions::Immutable },
        audit_events: args.audit_events.map(|target| match target.as_str() {
            "-" => JsonLines::Stdout,
            path => JsonLines::File(PathBuf::from(path)),
        }),
    };
    // Signals are caught from here on: one that arrives while the stores open ends the server
    // with a line saying so (the default action would end it silently).
    let mut shutdown = Box::pin(shutdown_signal()?);
    let (listener, served) = tokio::select! {
        ready = bind_when_ready(&config) => ready?,
        signal = &mut shutdown => {
            tracing::info!(signal, "registry-server stopped before it was ready");
            return Ok(());
        }
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        backend = ?backend,
        max_upload_bytes = config.max_upload_bytes,
        "registry-server listening"
    );
    if matches!(auth, Authenticator::Open) {
        tracing::warn!(
            "NO ACCESS CONTROL: no --jwt-public-key or --jwks was given, so anyone who can reach {} may \
             register connectors; keep it on loopback",
            listener.local_addr()?
        );
    }
    registry_server::memory::spawn_trimmer();
    serve(listener, served, async move {
        let signal = shutdown.await;
        tracing::info!(signal, "shutting down: finishing requests in flight");
    })
    .await?;
    tracing::info!("registry-server stopped");
    Ok(())
}

fn backend_of(args: &ServeArgs) -> Backend {
    match args.backend {
        BackendKind::Embedded => Backend::Embedded { data_dir: args.data_dir.clone() },
        BackendKind::Aws => Backend::Aws {
            table: args.table.clone().unwrap_or_default(),
            bucket: args.bucket.clone().unwrap_or_default(),
            key_prefix: args.key_prefix.clone(),
            create_missing: args.create_missing,
            max_store_requests: args.max_store_requests as usize,
        },
    }
}

/// Prints the comparison of Obsrv's table with the registry, repairing it unless `dry_run`.
/// `Ok(false)`: differences were found and left (a dry run).
async fn sync_obsrv(backend: Backend, postgres: String, dry_run: bool) -> anyhow::Result<bool> {
    use registry_shared::adapters::postgres::PostgresObsrvTable;
    use registry_shared::registry::obsrv::{Removal, sync};
    let rows = registry_server::open_rows(&backend).await?;
    let table = PostgresObsrvTable::new(&postgres)?;
    let report =
        sync(&*rows, &table, dry_run).await.map_err(|e| anyhow::anyhow!(registry_shared::error::error_chain(&e)))?;
    let verb = |done: &'static str, would: &'static str| if dry_run { would } else { done };
    for id in &report.missing {
        println!("{id}: missing in PostgreSQL ({})", verb("written", "would be written"));
    }
    for (id, columns) in &report.differing {
        println!("{id}: differs in {} ({})", columns.join(", "), verb("written", "would be written"));
    }
    for (id, removal) in &report.extra {
        let outcome = match removal {
            Removal::Removed => "removed",
            Removal::Referenced => "kept: a connector instance references it",
            Removal::Absent if dry_run => "would be removed unless a connector instance references it",
            Removal::Absent => "already gone",
        };
        println!("{id}: not in the registry ({outcome})");
    }
    println!(
        "{} rows equal, {} missing, {} differing, {} only in PostgreSQL{}",
        report.equal,
        report.missing.len(),
        report.differing.len(),
        report.extra.len(),
        if dry_run { " (dry run: nothing changed)" } else { "" }
    );
    Ok(!dry_run || report.is_in_sync())
}

/// Imports Obsrv's table into the registry and prints what became of each row. `Ok(false)`: a
/// row was refused.
async fn import_obsrv(
    backend: Backend,
    postgres: String,
    archives: String,
    limits: Limits,
    dry_run: bool,
) -> anyhow::Result<bool> {
    use registry_shared::adapters::postgres::PostgresObsrvTable;
    use registry_shared::registry::obsrv::import;
    let source = registry_server::obsrv_archives_at(&archives).await?;
    let (registry_archives, rows) = registry_server::open_archives_and_rows(&backend).await?;
    let table = PostgresObsrvTable::new(&postgres)?;
    let report = import(&table, &*source, &*registry_archives, &*rows, &limits, dry_run)
        .await
        .map_err(|e| anyhow::anyhow!(registry_shared::error::error_chain(&e)))?;
    let imported = if dry_run { "would be imported" } else { "imported" };
    for id in &report.imported {
        println!("{id}: {imported}");
    }
    for id in &report.present {
        println!("{id}: in the registry already (left as it is)");
    }
    for (id, reason) in &report.refused {
        println!("{id}: refused: {reason}");
    }
    println!(
        "{} {imported}, {} in the registry already, {} refused",
        report.imported.len(),
        report.present.len(),
        report.refused.len()
    );
    Ok(report.refused.is_empty())
}

/// Runs a one-shot command on a runtime of its own; its failure, with its causes, on stderr.
fn block_on<T>(name: &str, command: impl std::future::Future<Output = anyhow::Result<T>>) -> Option<T> {
    init_logging(LogFormat::Human);
    let done = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(command));
    done.map_err(|e| eprintln!("{name}: {e:#}")).ok()
}

/// A one-shot command whose outcome is its exit code: 1 when it found what it was asked to look
/// for (`Ok(false)`), 2 on failure.
fn run_outcome(name: &str, command: impl std::future::Future<Output = anyhow::Result<bool>>) -> ExitCode {
    match block_on(name, command) {
        Some(true) => ExitCode::SUCCESS,
        Some(false) => ExitCode::from(1),
        None => ExitCode::from(2),
    }
}

/// A one-shot command: 1 on failure.
fn run_once(name: &str, command: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    block_on(name, command).map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS)
}

async fn migrate_table(from: String, to: String) -> anyhow::Result<()> {
    use registry_shared::adapters::aws::{DynamoRowStore, sdk_config};
    let store = DynamoRowStore::new(&sdk_config().await, &to);
    let chain = |e: registry_shared::error::StoreError| anyhow::anyhow!(registry_shared::error::error_chain(&e));
    store.create_table_if_missing().await.map_err(chain).with_context(|| format!("preparing {to}"))?;
    let copied = store.copy_from_first_layout(&from).await.map_err(chain).with_context(|| format!("copying {from}"))?;
    println!("copied {} rows and {} connector heads from {from} into {to}", copied.rows, copied.heads);
    Ok(())
}

async fn register_uploads(table: String, bucket: String, key_prefix: String, keys: Vec<String>) -> anyhow::Result<()> {
    use registry_shared::adapters::aws::{DynamoRowStore, S3ArchiveStore, sdk_config};
    let sdk = sdk_config().await;
    let archives = Arc::new(S3ArchiveStore::new(&sdk, bucket, key_prefix)?);
    let registrar = Registrar::new(archives.clone(), Arc::new(DynamoRowStore::new(&sdk, table)), Limits::default());
    // The event of a re-drive names the operator who ran it.
    let subject = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let origin = registry_shared::registry::Origin::new(subject, registry_shared::metrics::CLI_ROUTE);
    for key in keys {
        let outcome = register_upload(&registrar, &*archives, &key, &origin)
            .await
            .map_err(|e| anyhow::anyhow!("{key}: {}", registry_shared::error::error_chain(&e)))?;
        println!("{key}: {outcome:?}");
    }
    Ok(())
}

/// Collects orphaned archives (each is logged as it goes) and prints the counts.
async fn gc_archives(backend: Backend, older_than: Duration, dry_run: bool) -> anyhow::Result<()> {
    use registry_shared::registry::gc::collect;
    let (archives, rows) = registry_server::open_archives_and_rows(&backend).await?;
    let now = registry_shared::domain::Timestamp::now();
    let collection = collect(&*archives, &*rows, older_than, now, dry_run)
        .await
        .map_err(|e| anyhow::anyhow!(registry_shared::error::error_chain(&e)))?;
    println!(
        "{} archives no row references ({} bytes) and {} uploads never registered {}; kept {} archives rows \
         reference and {} objects written less than {} s ago",
        collection.archives.len(),
        collection.archive_bytes(),
        collection.uploads.len(),
        if dry_run { "would be removed (dry run: nothing changed)" } else { "removed" },
        collection.referenced,
        collection.recent,
        older_than.as_secs(),
    );
    Ok(())
}

async fn deliver_audit_events(table: String, event_bus: String) -> anyhow::Result<()> {
    use registry_shared::adapters::aws::{DynamoRowStore, EventBridgeSink, sdk_config};
    let sdk = sdk_config().await;
    let (outbox, sink) = (DynamoRowStore::new(&sdk, table), EventBridgeSink::new(&sdk, event_bus));
    let delivered = registry_shared::registry::audit::deliver_pending(&outbox, &sink)
        .await
        .map_err(|e| anyhow::anyhow!(registry_shared::error::error_chain(&e)))?;
    println!("delivered {delivered} audit events");
    Ok(())
}

fn authenticator(args: &ServeArgs) -> anyhow::Result<Authenticator> {
    let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let rules = TokenRules {
        issuer: non_empty(&args.jwt_issuer),
        audience: non_empty(&args.jwt_audience),
        roles_claim: args.roles_claim.clone(),
    };
    let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let verifier = match (&args.jwt_public_key, &args.jwks) {
        (Some(pem), _) => JwtVerifier::from_pem(&read(pem)?, &rules).context("the JWT public key")?,
        (None, Some(jwks)) => JwtVerifier::from_jwks(&read(jwks)?, &rules).context("the JWKS file")?,
        (None, None) => {
            anyhow::ensure!(
                rules.issuer.is_none() && rules.audience.is_none(),
                "--jwt-issuer and --jwt-audience need --jwt-public-key or --jwks"
            );
            return Ok(Authenticator::Open);
        }
    };
    if rules.issuer.is_none() {
        tracing::warn!("no --jwt-issuer: tokens with any iss (or none) are accepted if the key verifies them");
    }
    if rules.audience.is_none() {
        tracing::warn!("no --jwt-audience: tokens with any aud (or none) are accepted if the key verifies them");
    }
    tracing::info!(roles_claim = %rules.roles_claim, "tokens are verified; roles come from this claim");
    Ok(Authenticator::Jwt(Arc::new(verifier)))
}

/// Catches SIGINT and SIGTERM from now on; resolves with the name of the first to arrive.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = &'static str> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.init(),
    }
}

fn validate(path: &std::path::Path, limits: &Limits) -> ExitCode {
    // The same reading and write budget as a registration, so a valid package registers.
    match check_archive(path, limits) {
        Ok(checked) => {
            let report = serde_json::json!({
                "valid": true,
                "sha256": checked.sha256,
                "archive_bytes": checked.archive_bytes,
                "rows": checked.rows,
            });
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(ReadError::Invalid(e)) => {
            eprintln!("invalid distribution: {e}");
            ExitCode::FAILURE
        }
        Err(ReadError::Io(e)) => {
            eprintln!("cannot read {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

/// Checks the package, then registers it. `Ok(false)`: the package is invalid or the registry
/// refused it (said on stderr).
async fn publish(
    path: PathBuf,
    by_reference: bool,
    multipart_limit: u64,
    args: RegistryArgs,
    limits: Limits,
) -> anyhow::Result<bool> {
    let registry = args.registry()?;
    // Nothing is sent before the package passes the registry's own checks.
    let checked = match check_archive(&path, &limits) {
        Ok(checked) => checked,
        Err(ReadError::Invalid(e)) => {
            eprintln!("publish: invalid distribution: {e}");
            return Ok(false);
        }
        Err(ReadError::Io(e)) => return Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
    };
    let by_reference =
        by_reference || needs_upload_url(checked.archive_bytes, &client::file_name(&path), multipart_limit);
    let ids: Vec<&str> = checked.rows.iter().map(|row| row.id.as_str()).collect();
    eprintln!(
        "publish: {} is valid ({}); registering it {}",
        path.display(),
        ids.join(", "),
        if by_reference { "through an upload URL" } else { "in one request" }
    );
    let progress = std::io::stderr().is_terminal();
    match registry.publish(&path, checked.archive_bytes, by_reference, progress).await {
        Ok(mut result) => {
            // The rows the registration wrote, unless the answer names them itself.
            if let Some(fields) = result.as_object_mut() {
                fields.entry("rows").or_insert_with(|| serde_json::json!(ids));
            }
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(true)
        }
        Err(Failure::Failed(e)) => Err(e),
        Err(refused) => {
            eprintln!("publish: {refused}");
            if !by_reference && matches!(&refused, Failure::Refused { status, .. } if status.as_u16() == 413) {
                eprintln!("publish: a smaller --multipart-limit, or --by-reference, sends it through an upload URL");
            }
            Ok(false)
        }
    }
}

/// Asks for a status transition and prints the registry's answer. `Ok(false)`: refused.
async fn change_status(transition: Transition, args: TransitionArgs) -> anyhow::Result<bool> {
    let registry = args.registry.registry()?;
    match registry.transition(&args.id, transition, args.reason.as_deref()).await {
        Ok(result) => {
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(true)
        }
        Err(Failure::Failed(e)) => Err(e),
        Err(refused) => {
            eprintln!("connector: {refused}");
            Ok(false)
        }
    }
}
