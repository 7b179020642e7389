//! Obsrv's `connector_registry` table in PostgreSQL, through tokio-postgres with rustls. The URL
//! is libpq's (`postgres://user:password@host:port/database?sslmode=require`): TLS is tried by
//! default (`sslmode=prefer`) and required with `sslmode=require`, against the Mozilla roots
//! compiled in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::StoreError;
use crate::registry::obsrv::{OBSRV_COLUMNS, ObsrvRow, ObsrvSummary, ObsrvTable, Removal, Replace};

/// The table's timestamps to the registry's millisecond precision (Obsrv's command-service writes
/// microseconds): compared at the precision both sides have, an imported row is equal to its
/// original.
fn millis(timestamp: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    timestamp.trunc_subsecs(3)
}

/// How long connecting may take before the attempt fails (and is retried later).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The table, over one connection opened when first needed and opened again after it broke.
pub struct PostgresObsrvTable {
    config: Config,
    /// Without TLS when the URL says `sslmode=disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    client: Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for PostgresObsrvTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only where it points is shown.
        write!(
            f,
            "PostgreSQL {:?}:{:?}/{:?}",
            self.config.get_hosts(),
            self.config.get_ports(),
            self.config.get_dbname()
        )
    }
}

impl PostgresObsrvTable {
    /// The table at `url`; nothing is connected yet, so a database that is down does not stop
    /// the registry from starting.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Other(anyhow::anyhow!("an invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = (config.get_ssl_mode() != tokio_postgres::config::SslMode::Disable).then(|| {
            let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
            tls.map(tokio_postgres_rustls::MakeRustlsConnect::new)
        });
        let tls = tls.transpose().map_err(|e| StoreError::Other(anyhow::anyhow!("setting up TLS: {e}")))?;
        Ok(Self { config, tls, client: Mutex::new(None) })
    }

    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut held = self.client.lock().await;
        if let Some(client) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(unavailable)?;
                tokio::spawn(async move { log_end(connection.await) });
                client
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(unavailable)?;
                tokio::spawn(async move { log_end(connection.await) });
                client
            }
        };
        let client = Arc::new(client);
        *held = Some(client.clone());
        Ok(client)
    }
}

fn log_end(ended: Result<(), tokio_postgres::Error>) {
    if let Err(error) = ended {
        tracing::warn!(%error, "the PostgreSQL connection ended");
    }
}

/// A database that cannot be reached, or a server error, is worth asking again later; anything
/// else is not.
fn unavailable(error: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(error).context("PostgreSQL"))
}

fn failed(error: tokio_postgres::Error) -> StoreError {
    match error.code() {
        None => unavailable(error),
        Some(_) => StoreError::Other(anyhow::Error::new(error).context("PostgreSQL")),
    }
}

/// `INSERT ... ON CONFLICT (id) DO UPDATE` of every column, where `replace` allows.
fn upsert_statement(replace: Replace) -> String {
    let columns = OBSRV_COLUMNS.join(", ");
    let values: Vec<String> = (1..=OBSRV_COLUMNS.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> =
        OBSRV_COLUMNS.iter().skip(1).map(|column| format!("{column} = EXCLUDED.{column}")).collect();
    let condition = match replace {
        Replace::NotNewer => " WHERE connector_registry.updated_date <= EXCLUDED.updated_date",
        Replace::Any => "",
    };
    format!(
        "INSERT INTO connector_registry ({columns}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}{condition}",
        values.join(", "),
        updates.join(", ")
    )
}

#[async_trait]
impl ObsrvTable for PostgresObsrvTable {
    async fn upsert(&self, rows: &[ObsrvRow], replace: Replace) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let statement = upsert_statement(replace);
        client.batch_execute("BEGIN").await.map_err(failed)?;
        let written = async {
            let statement = client.prepare(&statement).await.map_err(failed)?;
            let mut ordered: Vec<&ObsrvRow> = rows.iter().collect();
            ordered.sort_by_key(|row| row.status == "Live");
            for row in ordered {
                client
                    .execute(
                        &statement,
                        &[
                            &row.id,
                            &row.connector_id,
                            &row.name,
                            &row.r#type,
                            &row.category,
                            &row.version,
                            &row.description,
                            &row.technology,
                            &row.runtime,
                            &row.licence,
                            &row.owner,
                            &row.iconurl,
                            &row.status,
                            &row.ui_spec,
                            &row.source_url,
                            &row.source,
                            &row.created_by,
                            &row.updated_by,
                            &row.created_date,
                            &row.updated_date,
                            &row.live_date,
                        ],
                    )
                    .await
                    .map_err(failed)?;
            }
            Ok::<_, StoreError>(())
        }
        .await;
        match written {
            Ok(()) => client.batch_execute("COMMIT").await.map_err(failed),
            Err(error) => {
                // The connection may be gone already; a rollback that fails changes nothing.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(error)
            }
        }
    }

    async fn remove(&self, id: &str) -> Result<Removal, StoreError> {
        let client = self.client().await?;
        match client.execute("DELETE FROM connector_registry WHERE id = $1", &[&id]).await {
            Ok(0) => Ok(Removal::Absent),
            Ok(_) => Ok(Removal::Removed),
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(Removal::Referenced),
            Err(error) => Err(failed(error)),
        }
    }

    async fn instances_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let query = "SELECT id FROM connector_instances WHERE connector_id = $1 ORDER BY id";
        match client.query(query, &[&id]).await {
            Ok(rows) => rows.iter().map(|row| row.try_get(0).map_err(failed)).collect(),
            // An installation without connector instances has none that use the row.
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(Vec::new()),
            Err(error) => Err(failed(error)),
        }
    }

    async fn summaries(&self) -> Result<BTreeMap<String, ObsrvSummary>, StoreError> {
        let client = self.client().await?;
        let rows =
            client.query("SELECT id, status, updated_date FROM connector_registry", &[]).await.map_err(failed)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(failed)?,
                    ObsrvSummary {
                        status: row.try_get(1).map_err(failed)?,
                        updated_date: row.try_get(2).map_err(failed)?,
                    },
                ))
            })
            .collect()
    }

    async fn rows(&self) -> Result<BTreeMap<String, ObsrvRow>, StoreError> {
        let client = self.client().await?;
        let query = format!("SELECT {} FROM connector_registry", OBSRV_COLUMNS.join(", "));
        let rows = client.query(&query, &[]).await.map_err(failed)?;
        rows.iter()
            .map(|row| {
                let obsrv = ObsrvRow {
                    id: row.try_get(0).map_err(failed)?,
                    connector_id: row.try_get(1).map_err(failed)?,
                    name: row.try_get(2).map_err(failed)?,
                    r#type: row.try_get(3).map_err(failed)?,
                    category: row.try_get(4).map_err(failed)?,
                    version: row.try_get(5).map_err(failed)?,
                    description: row.try_get(6).map_err(failed)?,
                    technology: row.try_get(7).map_err(failed)?,
                    runtime: row.try_get(8).map_err(failed)?,
                    licence: row.try_get(9).map_err(failed)?,
                    owner: row.try_get(10).map_err(failed)?,
                    iconurl: row.try_get(11).map_err(failed)?,
                    status: row.try_get(12).map_err(failed)?,
                    ui_spec: row.try_get(13).map_err(failed)?,
                    source_url: row.try_get(14).map_err(failed)?,
                    source: row.try_get(15).map_err(failed)?,
                    created_by: row.try_get(16).map_err(failed)?,
                    updated_by: row.try_get(17).map_err(failed)?,
                    created_date: millis(row.try_get(18).map_err(failed)?),
                    updated_date: millis(row.try_get(19).map_err(failed)?),
                    live_date: row.try_get::<_, Option<chrono::NaiveDateTime>>(20).map_err(failed)?.map(millis),
                };
                Ok((obsrv.id.clone(), obsrv))
            })
            .collect()
    }
}

/// The URL a secret holds: a libpq URL as it is, or the JSON object of an RDS database secret
/// (`username`, `password`, `host`, `port`, `dbname`), as Secrets Manager rotates them.
pub fn url_of_secret(secret: &str) -> Result<String, StoreError> {
    let secret = secret.trim();
    if !secret.starts_with('{') {
        return Ok(secret.to_owned());
    }
    let invalid = |what: &str| StoreError::Other(anyhow::anyhow!("the PostgreSQL secret has no {what}"));
    let fields: serde_json::Value = serde_json::from_str(secret).map_err(|_| invalid("valid JSON"))?;
    let text = |name: &str| fields.get(name).and_then(serde_json::Value::as_str);
    let encode =
        |part: &str| percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC).to_string();
    let user = text("username").ok_or_else(|| invalid("username"))?;
    let password = text("password").ok_or_else(|| invalid("password"))?;
    let host = text("host").ok_or_else(|| invalid("host"))?;
    let port = match fields.get("port") {
        Some(serde_json::Value::Number(port)) => port.to_string(),
        Some(serde_json::Value::String(port)) => port.clone(),
        _ => "5432".to_owned(),
    };
    let database = text("dbname").or_else(|| text("database")).unwrap_or("postgres");
    Ok(format!("postgres://{}:{}@{host}:{port}/{}", encode(user), encode(password), encode(database)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_holds_a_url_or_an_rds_secret() {
        assert_eq!(url_of_secret(" postgres://a:b@h/db\n").unwrap(), "postgres://a:b@h/db");
        let rds = r#"{"engine": "postgres", "username": "obsrv", "password": "p@ss/w:rd", "host": "db.internal", "port": 5432, "dbname": "obsrv"}"#;
        let url = url_of_secret(rds).unwrap();
        assert_eq!(url, "postgres://obsrv:p%40ss%2Fw%3Ard@db.internal:5432/obsrv");
        let config: Config = url.parse().unwrap();
        assert_eq!(config.get_password(), Some("p@ss/w:rd".as_bytes()));
        assert!(url_of_secret(r#"{"username": "obsrv"}"#).is_err());
    }

    #[test]
    fn the_upsert_writes_every_column_where_the_table_is_not_newer() {
        let statement = upsert_statement(Replace::NotNewer);
        assert!(statement.starts_with("INSERT INTO connector_registry (id, connector_id, name, type,"), "{statement}");
        assert!(statement.contains("VALUES ($1, $2,"), "{statement}");
        assert!(statement.contains("$21)"), "{statement}");
        assert!(statement.contains("live_date = EXCLUDED.live_date"), "{statement}");
        assert!(!statement.contains("id = EXCLUDED.id,"), "the key is not updated: {statement}");
        assert!(statement.ends_with("WHERE connector_registry.updated_date <= EXCLUDED.updated_date"), "{statement}");
        assert!(
            upsert_statement(Replace::Any).ends_with("live_date = EXCLUDED.live_date"),
            "a repair replaces any row"
        );
    }

    #[test]
    fn a_url_s_password_is_never_shown() {
        let table = PostgresObsrvTable::new("postgres://obsrv:s3cret@db.internal:5432/obsrv?sslmode=disable").unwrap();
        let shown = format!("{table:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
        assert!(PostgresObsrvTable::new("not a url").is_err());
    }
}
