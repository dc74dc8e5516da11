//! The HyperFleet API: clusters in an embedded SQLite database, behind a bearer token.

use super::provider::Spans;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use hyperfleet_tracing::database::DatabaseTracing;
use hyperfleet_tracing::http::HttpServerTracing;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tracing::instrument::WithSubscriber;

/// The static token the example's clients send.
pub const TOKEN: &str = "hyperfleet-demo-token";

#[derive(Clone)]
struct Api {
    db: Arc<Mutex<rusqlite::Connection>>,
    queries: DatabaseTracing,
    provider: Spans,
    logs: tracing::Dispatch,
}

/// Seeds the database and serves the API on a free loopback port; returns its base URL.
pub async fn start(
    provider: Spans,
    logs: tracing::Dispatch,
    clusters: &[(&str, &str, i64)],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let db = rusqlite::Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE clusters (id TEXT PRIMARY KEY, name TEXT NOT NULL, generation INTEGER NOT NULL,
                                validation TEXT, provisioning TEXT)",
    )?;
    for (id, name, generation) in clusters {
        db.execute(
            "INSERT INTO clusters (id, name, generation) VALUES (?1, ?2, ?3)",
            (id, name, generation),
        )?;
    }
    let api = Api {
        db: Arc::new(Mutex::new(db)),
        queries: DatabaseTracing::new("sqlite").tracer_provider(&provider),
        provider: provider.clone(),
        logs,
    };
    let routes = Router::new()
        .route("/clusters", get(list))
        .route("/clusters/{id}", get(show))
        .route("/clusters/{id}/status", patch(update_status))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = HttpServerTracing::new()
        .tracer_provider(&provider)
        .server_address("127.0.0.1")
        .route_layer(routes);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

impl Api {
    /// `api.validate_token`: the token itself never goes into an attribute.
    fn validate_token(&self, headers: &HeaderMap) -> Result<(), StatusCode> {
        let tracer = self.provider.tracer("hyperfleet-api");
        let span = tracer.start_with_context("api.validate_token", &Context::current());
        let cx = Context::current().with_span(span);
        let valid = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {TOKEN}"));
        cx.span()
            .set_attribute(KeyValue::new("api.token_valid", valid));
        cx.span().end();
        if valid {
            Ok(())
        } else {
            Err(StatusCode::UNAUTHORIZED)
        }
    }

    fn query<T>(
        &self,
        operation: &str,
        run: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StatusCode> {
        let cx = self.queries.start(operation, "clusters");
        let db = self
            .db
            .lock()
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        let result = run(&db).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR);
        cx.span().end();
        result
    }
}

fn cluster_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": row.get::<_, String>(0)?,
        "name": row.get::<_, String>(1)?,
        "generation": row.get::<_, i64>(2)?,
        "status": {"validation": row.get::<_, Option<String>>(3)?, "provisioning": row.get::<_, Option<String>>(4)?},
    }))
}

async fn list(State(api): State<Api>, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    let logs = api.logs.clone();
    async move {
        api.validate_token(&headers)?;
        let clusters = api.query("SELECT", |db| {
            let mut statement = db.prepare(
                "SELECT id, name, generation, validation, provisioning FROM clusters ORDER BY id",
            )?;
            let rows = statement.query_map([], cluster_json)?;
            rows.collect::<rusqlite::Result<Vec<Value>>>()
        })?;
        tracing::info!(count = clusters.len(), "listed clusters");
        Ok(Json(json!({"items": clusters})))
    }
    .with_subscriber(logs)
    .await
}

async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let logs = api.logs.clone();
    async move {
        api.validate_token(&headers)?;
        let cluster = api.query("SELECT", |db| {
            db.query_row(
                "SELECT id, name, generation, validation, provisioning FROM clusters WHERE id = ?1",
                [&id],
                cluster_json,
            )
        });
        let cluster = cluster.map_err(|_| StatusCode::NOT_FOUND)?;
        tracing::info!(cluster_id = id, "served cluster");
        Ok(Json(cluster))
    }
    .with_subscriber(logs)
    .await
}

async fn update_status(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<StatusCode, StatusCode> {
    let logs = api.logs.clone();
    async move {
        api.validate_token(&headers)?;
        let adapter = body["adapter"].as_str().unwrap_or_default().to_owned();
        let status = body["status"].as_str().unwrap_or_default().to_owned();
        let column = match adapter.as_str() {
            "validation" => "validation",
            "provisioning" => "provisioning",
            _ => return Err(StatusCode::BAD_REQUEST),
        };
        let updated = api.query("UPDATE", |db| {
            db.execute(
                &format!("UPDATE clusters SET {column} = ?1 WHERE id = ?2"),
                (&status, &id),
            )
        })?;
        if updated == 0 {
            return Err(StatusCode::NOT_FOUND);
        }
        tracing::info!(cluster_id = id, adapter, status, "status updated");
        Ok(StatusCode::NO_CONTENT)
    }
    .with_subscriber(logs)
    .await
}
