//! A database of its own for each test, in the PostgreSQL the test command starts
//! (`REGISTRY_TEST_POSTGRES`, an administrator's URL), with Obsrv's tables (`tests/obsrv/schema.sql`).

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// Obsrv's tables, as its migrations declare them.
pub const OBSRV_SCHEMA: &str = include_str!("../obsrv/schema.sql");

/// The administrator's URL, or a panic that says how to get one (as the AWS tests do), unless
/// `REGISTRY_SKIP_POSTGRES_TESTS=1`.
pub fn admin_url() -> Option<String> {
    match std::env::var("REGISTRY_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("REGISTRY_SKIP_POSTGRES_TESTS").as_deref() == Ok("1") => None,
        _ => panic!(
            "the Obsrv mirror's tests need PostgreSQL: run them with scripts/test, or set REGISTRY_TEST_POSTGRES \
             (REGISTRY_SKIP_POSTGRES_TESTS=1 skips them)"
        ),
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// One test's Obsrv database.
pub struct ObsrvDatabase {
    pub url: String,
    pub name: String,
    admin: String,
}

impl ObsrvDatabase {
    /// A new database with Obsrv's tables; `None` when the tests are skipped.
    pub async fn fresh() -> Option<Self> {
        let database = Self::reserved()?;
        database.create().await;
        Some(database)
    }

    /// The name and URL of a database that does not exist yet (`create` makes it): a PostgreSQL
    /// that cannot be written until then.
    pub fn reserved() -> Option<Self> {
        let admin = admin_url()?;
        let name = format!("obsrv_{}", uuid::Uuid::new_v4().simple());
        let base = admin.rsplit_once('/').map(|(base, _)| base).expect("a URL with a database");
        Some(Self { url: format!("{base}/{name}"), name, admin })
    }

    pub async fn create(&self) {
        let admin = connect(&self.admin).await.expect("the test PostgreSQL answers");
        admin.batch_execute(&format!("CREATE DATABASE {}", self.name)).await.expect("a database");
        self.client().await.batch_execute(OBSRV_SCHEMA).await.expect("Obsrv's tables");
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await.expect("the test database answers")
    }

    /// Waits up to `timeout` for `check` to hold of the table's rows, as `query` returns them;
    /// `check` says what it found when it does not hold.
    pub async fn wait_until<T>(
        &self,
        query: &str,
        timeout: Duration,
        mut check: impl FnMut(&[tokio_postgres::Row]) -> Result<T, String>,
    ) -> T {
        let client = self.client().await;
        let started = Instant::now();
        loop {
            let rows = client.query(query, &[]).await.expect(query);
            let found = match check(&rows) {
                Ok(found) => return found,
                Err(found) => found,
            };
            assert!(started.elapsed() < timeout, "{query}: after {timeout:?}, {found}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
