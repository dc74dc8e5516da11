//! Where the API keeps its clusters: PostgreSQL when `DATABASE_URL` names one (as the
//! HyperFleet API does), otherwise an embedded SQLite database. Every call goes through the
//! crate's database glue, which makes its `{operation} {table}` span.

use super::provider::Spans;
use hyperfleet_tracing::database::DatabaseTracing;
use serde_json::{Value, json};
use std::sync::Mutex;

type Error = Box<dyn std::error::Error + Send + Sync>;

const TABLE: &str = "clusters";
const COLUMNS: &str = "id, name, generation, validation, provisioning";

pub enum Store {
    Sqlite {
        db: Mutex<rusqlite::Connection>,
        spans: DatabaseTracing,
    },
    Postgres {
        client: tokio_postgres::Client,
        spans: DatabaseTracing,
        description: String,
    },
}

impl Store {
    /// PostgreSQL at `DATABASE_URL` (`postgres://…`), else SQLite in memory. A URL that names
    /// no PostgreSQL, or one that cannot be reached, is an error: never a silent fallback.
    pub async fn from_env(provider: &Spans) -> Result<Self, Error> {
        let url = std::env::var("DATABASE_URL").unwrap_or_default();
        if url.is_empty() {
            return Ok(Self::Sqlite {
                db: Mutex::new(rusqlite::Connection::open_in_memory()?),
                spans: DatabaseTracing::new("sqlite").tracer_provider(provider),
            });
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(
                "DATABASE_URL must be a postgres:// URL (unset it for the embedded SQLite)".into(),
            );
        }
        let config: tokio_postgres::Config = url.parse()?;
        let description = describe(&config);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            format!("cannot reach PostgreSQL at {description} (DATABASE_URL): {e}{cause}")
        })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("PostgreSQL connection closed: {error}");
            }
        });
        Ok(Self::Postgres {
            client,
            spans: DatabaseTracing::new("postgresql").tracer_provider(provider),
            description,
        })
    }

    /// What it runs on, for the example's first line.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { .. } => "an embedded SQLite database".to_owned(),
            Self::Postgres { description, .. } => format!("PostgreSQL at {description}"),
        }
    }

    /// Creates the table (a temporary one on PostgreSQL: it goes with the connection) and
    /// inserts `clusters`.
    pub async fn seed(&self, clusters: &[(&str, &str, i64)]) -> Result<(), Error> {
        match self {
            Self::Sqlite { db, .. } => {
                let db = db.lock().map_err(|_| "the SQLite lock is poisoned")?;
                db.execute_batch(
                    "CREATE TABLE clusters (id TEXT PRIMARY KEY, name TEXT NOT NULL,
                     generation INTEGER NOT NULL, validation TEXT, provisioning TEXT)",
                )?;
                for (id, name, generation) in clusters {
                    db.execute(
                        "INSERT INTO clusters (id, name, generation) VALUES (?1, ?2, ?3)",
                        (id, name, generation),
                    )?;
                }
            }
            Self::Postgres { client, .. } => {
                client
                    .batch_execute(
                        "CREATE TEMPORARY TABLE clusters (id TEXT PRIMARY KEY, name TEXT NOT NULL,
                         generation BIGINT NOT NULL, validation TEXT, provisioning TEXT)",
                    )
                    .await?;
                for (id, name, generation) in clusters {
                    client
                        .execute(
                            "INSERT INTO clusters (id, name, generation) VALUES ($1, $2, $3)",
                            &[id, name, generation],
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Value>, Error> {
        let order = format!("SELECT {COLUMNS} FROM clusters ORDER BY id");
        match self {
            Self::Sqlite { db, spans } => {
                let db = db.lock().map_err(|_| "the SQLite lock is poisoned")?;
                Ok(spans.query_blocking("SELECT", TABLE, || {
                    let mut statement = db.prepare(&order)?;
                    let rows = statement.query_map([], sqlite_cluster)?;
                    rows.collect::<rusqlite::Result<Vec<Value>>>()
                })?)
            }
            Self::Postgres { client, spans, .. } => {
                let rows = spans
                    .query("SELECT", TABLE, client.query(&order, &[]))
                    .await?;
                Ok(rows.iter().map(postgres_cluster).collect())
            }
        }
    }

    pub async fn show(&self, id: &str) -> Result<Option<Value>, Error> {
        match self {
            Self::Sqlite { db, spans } => {
                let db = db.lock().map_err(|_| "the SQLite lock is poisoned")?;
                let query = format!("SELECT {COLUMNS} FROM clusters WHERE id = ?1");
                let found = spans.query_blocking("SELECT", TABLE, || {
                    db.query_row(&query, [id], sqlite_cluster)
                });
                match found {
                    Ok(cluster) => Ok(Some(cluster)),
                    Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                    Err(error) => Err(error.into()),
                }
            }
            Self::Postgres { client, spans, .. } => {
                let query = format!("SELECT {COLUMNS} FROM clusters WHERE id = $1");
                let row = spans
                    .query("SELECT", TABLE, client.query_opt(&query, &[&id]))
                    .await?;
                Ok(row.as_ref().map(postgres_cluster))
            }
        }
    }

    /// Sets `column` (`validation` or `provisioning`, chosen by the caller) to `status`;
    /// returns the number of rows updated.
    pub async fn update_status(&self, column: &str, status: &str, id: &str) -> Result<u64, Error> {
        match self {
            Self::Sqlite { db, spans } => {
                let db = db.lock().map_err(|_| "the SQLite lock is poisoned")?;
                let update = format!("UPDATE clusters SET {column} = ?1 WHERE id = ?2");
                let updated =
                    spans.query_blocking("UPDATE", TABLE, || db.execute(&update, (status, id)))?;
                Ok(updated as u64)
            }
            Self::Postgres { client, spans, .. } => {
                let update = format!("UPDATE clusters SET {column} = $1 WHERE id = $2");
                Ok(spans
                    .query("UPDATE", TABLE, client.execute(&update, &[&status, &id]))
                    .await?)
            }
        }
    }
}

/// `host:port/database`, without the user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

fn sqlite_cluster(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(cluster(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn postgres_cluster(row: &tokio_postgres::Row) -> Value {
    cluster(row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))
}

fn cluster(
    id: String,
    name: String,
    generation: i64,
    validation: Option<String>,
    provisioning: Option<String>,
) -> Value {
    json!({
        "id": id,
        "name": name,
        "generation": generation,
        "status": {"validation": validation, "provisioning": provisioning},
    })
}
