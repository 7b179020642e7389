//! The one configuration of every function, read from the environment the template sets, once, at
//! start: every function reads the same settings the same way (the two functions that read
//! archives, register and register-upload, apply the same limits). A setting that is malformed
//! stops the function at init with a message naming the variable; one that a function needs but
//! lacks does the same when the function asks for it.

use std::time::Duration;

use super::Error;
use crate::auth::{Authenticator, RolesClaim};
use crate::distribution::Limits;

/// API Gateway passes at most 6 MB of payload to a function; larger archives go through S3.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 6 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `REGISTRY_TABLE`: the DynamoDB table of rows (and of the audit outbox).
    table: Option<String>,
    /// `REGISTRY_BUCKET`: the S3 bucket of archives.
    bucket: Option<String>,
    /// `REGISTRY_KEY_PREFIX`: a prefix before every key the registry writes in the bucket.
    pub key_prefix: String,
    /// `REGISTRY_INCOMING_PREFIX`: where archives registered from S3 events arrive (`incoming/`).
    pub incoming_prefix: String,
    /// `REGISTRY_MAX_ARCHIVE_BYTES`, `REGISTRY_MAX_UNCOMPRESSED_BYTES`, `REGISTRY_MAX_ENTRIES`.
    pub limits: Limits,
    /// `REGISTRY_MAX_UPLOAD_BYTES`: the largest register request body (413 beyond it).
    pub max_upload_bytes: u64,
    /// `REGISTRY_URL_EXPIRY_SECONDS`: how long a presigned URL stays valid.
    pub url_expiry: Duration,
    /// `REGISTRY_GC_GRACE_SECONDS`: how old an archive no row references, or an upload never
    /// registered, must be for the gc-archives function to remove it (a day).
    pub gc_grace: Duration,
    /// `REGISTRY_EVENT_BUS`: where audit events go (`default`).
    pub event_bus: String,
    /// `REGISTRY_FEEDS_OBSRV` (`true`): registrations feed an Obsrv installation's runtimes (the
    /// obsrv-mirror function runs), so they say what those runtimes cannot do with a package.
    pub feeds_obsrv: bool,
    /// `REGISTRY_ALLOW_VERSION_OVERWRITE` (`false`): a registered version may be registered again
    /// with other bytes, as in the original.
    pub versions: crate::domain::Versions,
    /// `REGISTRY_CONNECT_AT_INIT` (`false`): `true` has the functions open their store connections
    /// (TCP and TLS) at init rather than in the first request (`lambda::connect_at_init`), for
    /// environments whose init runs before requests arrive (provisioned concurrency).
    pub connect_at_init: bool,
    /// `REGISTRY_AUTH`: `gateway` (the default) or `off`.
    access_control_off: bool,
    /// `REGISTRY_OBSRV_POSTGRES_SECRET`: the Secrets Manager secret holding Obsrv's PostgreSQL
    /// (a URL, or an RDS secret); `REGISTRY_OBSRV_POSTGRES`, the URL itself (local runs). Read
    /// only by the obsrv-mirror function.
    #[cfg_attr(not(feature = "lambda-obsrv-mirror"), allow(dead_code))]
    obsrv_postgres: ObsrvPostgres,
    /// `REGISTRY_ROLES_CLAIM`: the claim that holds a token's roles.
    pub roles_claim: RolesClaim,
    /// `REGISTRY_JWT_PUBLIC_KEY`, `REGISTRY_JWKS`, `REGISTRY_JWT_ISSUER`, `REGISTRY_JWT_AUDIENCE`:
    /// the authorizer's verification keys and rules.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    jwt: JwtSettings,
}

/// Where the obsrv-mirror function writes; parsed everywhere, so that every function reads the
/// same environment the same way.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "lambda-obsrv-mirror"), allow(dead_code))]
struct ObsrvPostgres {
    secret: Option<String>,
    url: Option<String>,
    /// `REGISTRY_OBSRV_ARCHIVE_BUCKET` and `REGISTRY_OBSRV_ARCHIVE_PREFIX`: Obsrv's own archive
    /// container, which receives each row's archive before the row.
    archive_bucket: Option<String>,
    archive_prefix: String,
}

impl std::fmt::Debug for ObsrvPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("ObsrvPostgres")
            .field("secret", &self.secret)
            .field("url", &self.url.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Read only by the authorizer (the `jwt` feature); parsed everywhere, for the same reason.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
struct JwtSettings {
    public_key: Option<String>,
    jwks: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings of the environment `lookup` reads. Empty values count as unset, as the
    /// template declares optional parameters.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let parsed = |name: &str| -> Result<Option<u64>, Error> {
            set(name)
                .map(|raw| {
                    raw.trim().parse().map_err(|_| format!("the environment variable {name} has an invalid value"))
                })
                .transpose()
                .map_err(Error::from)
        };
        let flag = |name: &str, default: bool| -> Result<bool, Error> {
            match set(name).as_deref().map(str::trim) {
                None => Ok(default),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(other) => Err(format!("{name} must be true or false, not {other:?}").into()),
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_archive_bytes: parsed("REGISTRY_MAX_ARCHIVE_BYTES")?.unwrap_or(defaults.max_archive_bytes),
            max_uncompressed_bytes: parsed("REGISTRY_MAX_UNCOMPRESSED_BYTES")?
                .unwrap_or(defaults.max_uncompressed_bytes),
            max_entries: parsed("REGISTRY_MAX_ENTRIES")?.unwrap_or(defaults.max_entries),
            ..defaults
        };
        let access_control_off = match set("REGISTRY_AUTH").as_deref() {
            None | Some("gateway") => false,
            Some("off") => true,
            Some(other) => return Err(format!("REGISTRY_AUTH must be gateway or off, not {other:?}").into()),
        };
        let roles_claim = match set("REGISTRY_ROLES_CLAIM") {
            Some(raw) => raw.parse().map_err(|e: String| format!("REGISTRY_ROLES_CLAIM: {e}"))?,
            None => RolesClaim::default(),
        };
        Ok(Self {
            table: set("REGISTRY_TABLE"),
            bucket: set("REGISTRY_BUCKET"),
            key_prefix: lookup("REGISTRY_KEY_PREFIX").unwrap_or_default(),
            incoming_prefix: set("REGISTRY_INCOMING_PREFIX").unwrap_or_else(|| "incoming/".to_owned()),
            limits,
            max_upload_bytes: parsed("REGISTRY_MAX_UPLOAD_BYTES")?.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES),
            url_expiry: Duration::from_secs(
                parsed("REGISTRY_URL_EXPIRY_SECONDS")?.unwrap_or(crate::api::MAX_URL_EXPIRY.as_secs()),
            ),
            gc_grace: parsed("REGISTRY_GC_GRACE_SECONDS")?
                .map_or(crate::registry::gc::DEFAULT_GRACE, Duration::from_secs),
            event_bus: set("REGISTRY_EVENT_BUS").unwrap_or_else(|| "default".to_owned()),
            feeds_obsrv: flag("REGISTRY_FEEDS_OBSRV", false)?,
            versions: if flag("REGISTRY_ALLOW_VERSION_OVERWRITE", false)? {
                crate::domain::Versions::Overwritable
            } else {
                crate::domain::Versions::Immutable
            },
            connect_at_init: flag("REGISTRY_CONNECT_AT_INIT", false)?,
            access_control_off,
            obsrv_postgres: ObsrvPostgres {
                secret: set("REGISTRY_OBSRV_POSTGRES_SECRET"),
                url: set("REGISTRY_OBSRV_POSTGRES"),
                archive_bucket: set("REGISTRY_OBSRV_ARCHIVE_BUCKET"),
                archive_prefix: lookup("REGISTRY_OBSRV_ARCHIVE_PREFIX").unwrap_or_default(),
            },
            roles_claim,
            jwt: JwtSettings {
                public_key: set("REGISTRY_JWT_PUBLIC_KEY"),
                jwks: set("REGISTRY_JWKS"),
                issuer: set("REGISTRY_JWT_ISSUER"),
                audience: set("REGISTRY_JWT_AUDIENCE"),
            },
        })
    }

    /// The table, which every function with rows needs.
    pub fn table(&self) -> Result<&str, Error> {
        self.table.as_deref().ok_or_else(|| "the environment variable REGISTRY_TABLE must be set".into())
    }

    /// The bucket, which every function with archives needs.
    pub fn bucket(&self) -> Result<&str, Error> {
        self.bucket.as_deref().ok_or_else(|| "the environment variable REGISTRY_BUCKET must be set".into())
    }

    /// Access control of a route's function: the roles in the claims API Gateway's authorizer
    /// passes on, unless `REGISTRY_AUTH=off` (for throwaway stacks) switches it off.
    pub fn authenticator(&self) -> Authenticator {
        if self.open() { Authenticator::Open } else { Authenticator::GatewayClaims(self.roles_claim.clone()) }
    }

    /// Access control of the system route's function: callers API Gateway's IAM authorization let
    /// through, unless `REGISTRY_AUTH=off`.
    pub fn system_authenticator(&self) -> Authenticator {
        if self.open() { Authenticator::Open } else { Authenticator::GatewayIam }
    }

    fn open(&self) -> bool {
        if self.access_control_off {
            tracing::warn!("REGISTRY_AUTH=off: every caller may use this function");
        }
        self.access_control_off
    }

    /// The authorizer's verifier: the key of `REGISTRY_JWT_PUBLIC_KEY` (PEM text) or the set of
    /// `REGISTRY_JWKS` (JSON text); issuer and audience checked when set.
    #[cfg(feature = "jwt")]
    pub fn verifier(&self) -> Result<crate::auth::JwtVerifier, Error> {
        use crate::auth::{JwtVerifier, TokenRules};
        let rules = TokenRules {
            issuer: self.jwt.issuer.clone(),
            audience: self.jwt.audience.clone(),
            roles_claim: self.roles_claim.clone(),
        };
        match (&self.jwt.public_key, &self.jwt.jwks) {
            (Some(pem), _) => JwtVerifier::from_pem(pem.as_bytes(), &rules)
                .map_err(|e| format!("REGISTRY_JWT_PUBLIC_KEY: {e:#}").into()),
            (None, Some(jwks)) => {
                JwtVerifier::from_jwks(jwks.as_bytes(), &rules).map_err(|e| format!("REGISTRY_JWKS: {e:#}").into())
            }
            (None, None) => Err("REGISTRY_JWT_PUBLIC_KEY or REGISTRY_JWKS must be set".into()),
        }
    }

    /// The archives of the bucket, in S3.
    #[cfg(feature = "aws-s3")]
    pub fn archive_store(&self, sdk: &aws_config::SdkConfig) -> Result<crate::adapters::aws::S3ArchiveStore, Error> {
        Ok(crate::adapters::aws::S3ArchiveStore::new(sdk, self.bucket()?.to_owned(), self.key_prefix.clone())?)
    }

    /// The rows of the table, in DynamoDB.
    #[cfg(feature = "aws-dynamodb")]
    pub fn row_store(&self, sdk: &aws_config::SdkConfig) -> Result<crate::adapters::aws::DynamoRowStore, Error> {
        Ok(crate::adapters::aws::DynamoRowStore::new(sdk, self.table()?.to_owned()))
    }

    /// Whether Obsrv's PostgreSQL is configured (a secret or a URL).
    pub fn reads_obsrv_table(&self) -> bool {
        self.obsrv_postgres.secret.is_some() || self.obsrv_postgres.url.is_some()
    }

    /// Obsrv's table: the URL the secret holds (read now), or the URL given directly.
    #[cfg(all(feature = "obsrv-postgres", feature = "aws-secrets"))]
    pub async fn obsrv_table(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<crate::adapters::postgres::PostgresObsrvTable, Error> {
        use crate::adapters::postgres::{PostgresObsrvTable, url_of_secret};
        let url = match (&self.obsrv_postgres.secret, &self.obsrv_postgres.url) {
            (Some(secret), _) => {
                let text = crate::adapters::aws::secrets::secret_string(sdk, secret)
                    .await
                    .map_err(|e| format!("REGISTRY_OBSRV_POSTGRES_SECRET: {}", crate::error::error_chain(&e)))?;
                url_of_secret(&text).map_err(|e| format!("REGISTRY_OBSRV_POSTGRES_SECRET: {e}"))?
            }
            (None, Some(url)) => url.clone(),
            (None, None) => return Err("REGISTRY_OBSRV_POSTGRES_SECRET or REGISTRY_OBSRV_POSTGRES must be set".into()),
        };
        Ok(PostgresObsrvTable::new(&url).map_err(|e| format!("Obsrv's PostgreSQL: {e}"))?)
    }

    /// Where the mirror writes: Obsrv's table, and Obsrv's archive bucket when one is set.
    #[cfg(feature = "lambda-obsrv-mirror")]
    pub async fn obsrv(&self, sdk: &aws_config::SdkConfig) -> Result<crate::registry::obsrv::Obsrv, Error> {
        use crate::registry::obsrv::{ArchiveCopy, Obsrv};
        let archives = match &self.obsrv_postgres.archive_bucket {
            Some(bucket) => {
                let to = crate::adapters::aws::S3ArchiveStore::new(
                    sdk,
                    bucket.clone(),
                    self.obsrv_postgres.archive_prefix.clone(),
                )?;
                Some(ArchiveCopy { from: std::sync::Arc::new(self.archive_store(sdk)?), to: std::sync::Arc::new(to) })
            }
            None => None,
        };
        Ok(Obsrv { table: std::sync::Arc::new(self.obsrv_table(sdk).await?), archives })
    }

    /// The registrar of the register and register-upload functions: the same limits, and the
    /// same warnings for Obsrv's runtimes, in both.
    pub fn registrar(
        &self,
        archives: std::sync::Arc<dyn crate::registry::ArchiveStore>,
        rows: std::sync::Arc<dyn crate::registry::RowStore>,
    ) -> crate::registry::Registrar {
        let registrar = crate::registry::Registrar::new(archives, rows, self.limits).with_versions(self.versions);
        if self.feeds_obsrv { registrar.feeding_obsrv() } else { registrar }
    }

    /// The generate-url and url-access functions' state: presigned URLs of the bucket
    /// (`archive_store`).
    #[cfg(feature = "aws-s3")]
    pub fn files_state(&self, archives: std::sync::Arc<dyn crate::registry::ArchiveStore>) -> crate::api::FilesState {
        crate::api::FilesState { archives, expiry: self.url_expiry }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Error> {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_where_nothing_is_set() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(settings.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        assert_eq!(settings.incoming_prefix, "incoming/");
        assert_eq!(settings.event_bus, "default");
        assert_eq!(settings.url_expiry, crate::api::MAX_URL_EXPIRY);
        assert_eq!(settings.gc_grace, Duration::from_secs(24 * 60 * 60));
        assert!(matches!(settings.authenticator(), Authenticator::GatewayClaims(_)));
        assert!(!settings.connect_at_init);
        assert_eq!(settings.table().unwrap_err().to_string(), "the environment variable REGISTRY_TABLE must be set");
    }

    #[test]
    fn the_archive_limits_are_read_once_for_every_function() {
        let settings = settings(&[("REGISTRY_MAX_ARCHIVE_BYTES", "1024"), ("REGISTRY_MAX_ENTRIES", "7")]).unwrap();
        assert_eq!(settings.limits.max_archive_bytes, 1024);
        assert_eq!(settings.limits.max_entries, 7);
        assert_eq!(settings.limits.max_uncompressed_bytes, Limits::default().max_uncompressed_bytes);
    }

    #[test]
    fn malformed_settings_name_their_variable() {
        let error = settings(&[("REGISTRY_MAX_ENTRIES", "many")]).unwrap_err().to_string();
        assert!(error.contains("REGISTRY_MAX_ENTRIES"), "{error}");
        let error = settings(&[("REGISTRY_GC_GRACE_SECONDS", "1d")]).unwrap_err().to_string();
        assert!(error.contains("REGISTRY_GC_GRACE_SECONDS"), "{error}");
        assert_eq!(settings(&[("REGISTRY_GC_GRACE_SECONDS", "0")]).unwrap().gc_grace, Duration::ZERO);
        let error = settings(&[("REGISTRY_CONNECT_AT_INIT", "yes")]).unwrap_err().to_string();
        assert!(error.contains("REGISTRY_CONNECT_AT_INIT"), "{error}");
        assert!(settings(&[("REGISTRY_CONNECT_AT_INIT", "true")]).unwrap().connect_at_init);
        let error = settings(&[("REGISTRY_AUTH", "maybe")]).unwrap_err().to_string();
        assert!(error.contains("REGISTRY_AUTH"), "{error}");
        let error = settings(&[("REGISTRY_ROLES_CLAIM", "a.b.c.d")]).unwrap_err().to_string();
        assert!(error.contains("REGISTRY_ROLES_CLAIM"), "{error}");
        assert!(matches!(settings(&[("REGISTRY_AUTH", "off")]).unwrap().authenticator(), Authenticator::Open));
    }
}
