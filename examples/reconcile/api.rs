//! The HyperFleet API: clusters in PostgreSQL (`DATABASE_URL`) or an embedded SQLite
//! database, behind a bearer token.

use super::provider::Spans;
use super::store::Store;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::http::HttpServerTracing;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::instrument::WithSubscriber;

/// The static token the example's clients send.
pub const TOKEN: &str = "hyperfleet-demo-token";

#[derive(Clone)]
struct Api {
    db: Arc<Store>,
    provider: Spans,
    logs: tracing::Dispatch,
}

/// Seeds the database and serves the API on a free loopback port; returns its base URL.
pub async fn start(
    provider: Spans,
    logs: tracing::Dispatch,
    store: Store,
    clusters: &[(&str, &str, i64)],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    store.seed(clusters).await?;
    let api = Api {
        db: Arc::new(store),
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
        .settings(Settings::new().tracer_provider(&provider))
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
}

async fn list(State(api): State<Api>, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    let logs = api.logs.clone();
    async move {
        api.validate_token(&headers)?;
        let clusters = api.db.list().await.map_err(internal)?;
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
        let cluster = api.db.show(&id).await.map_err(internal)?;
        let cluster = cluster.ok_or(StatusCode::NOT_FOUND)?;
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
        let updated = api
            .db
            .update_status(column, &status, &id)
            .await
            .map_err(internal)?;
        if updated == 0 {
            return Err(StatusCode::NOT_FOUND);
        }
        tracing::info!(cluster_id = id, adapter, status, "status updated");
        Ok(StatusCode::NO_CONTENT)
    }
    .with_subscriber(logs)
    .await
}

/// A database failure: 500, and a log line with the error.
fn internal(error: Box<dyn std::error::Error + Send + Sync>) -> StatusCode {
    tracing::error!(%error, "database call failed");
    StatusCode::INTERNAL_SERVER_ERROR
}
