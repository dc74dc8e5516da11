//! A W3C-style Trace Context test service, in the shape the W3C validation suite drives: it
//! receives `POST` with a JSON array of `{url, arguments}` and, for each element, `POST`s
//! `arguments` to `url`, behind the crate's server glue and through its client glue.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::http::{HttpClientTracing, HttpServerTracing};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use std::net::SocketAddr;

/// One instruction of the array the service receives.
#[derive(Debug, Deserialize)]
pub struct Instruction {
    pub url: String,
    pub arguments: serde_json::Value,
}

/// Serves the test service at `http://{address}/test` until the runtime stops.
pub async fn serve(provider: &SdkTracerProvider) -> SocketAddr {
    let client = HttpClientTracing::new().settings(Settings::new().tracer_provider(provider));
    let routes = Router::new().route(
        "/test",
        post(move |Json(instructions): Json<Vec<Instruction>>| {
            let client = client.clone();
            async move { forward(&client, instructions).await }
        }),
    );
    let app = HttpServerTracing::new()
        .settings(Settings::new().tracer_provider(provider))
        .route_layer(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the test service");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

/// `POST`s each instruction's arguments to its url, in order, under the request's context.
async fn forward(client: &HttpClientTracing, instructions: Vec<Instruction>) -> StatusCode {
    let http = reqwest::Client::new();
    for instruction in instructions {
        let request = http
            .post(&instruction.url)
            .header("content-type", "application/json")
            .body(instruction.arguments.to_string())
            .build();
        let Ok(request) = request else {
            return StatusCode::BAD_REQUEST;
        };
        if client.send(&http, request).await.is_err() {
            return StatusCode::BAD_GATEWAY;
        }
    }
    StatusCode::OK
}
