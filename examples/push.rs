//! Serve Pub/Sub push (and Eventarc) deliveries over HTTP, each event inside the standard's
//! receive and process spans, logging each with its trace id: what a Cloud Run service runs.
//!
//! ```sh
//! HYPERFLEET_PUSH_ADDR=127.0.0.1:8080 cargo run --features push,telemetry --example push
//! # then point a push subscription (wrapped, or unwrapped with write_metadata) or an
//! # Eventarc trigger at http://127.0.0.1:8080/
//! ```
//!
//! Reads `HYPERFLEET_PUSH_ADDR` (default `127.0.0.1:8080`), `HYPERFLEET_TOPIC` (default
//! `hyperfleet-clusters`, named in the spans), `HYPERFLEET_SUBSCRIPTION` (default
//! `{topic}-validation`, for deliveries that do not name theirs), `HYPERFLEET_MAX_MESSAGES`
//! (exit after that many handled messages; unset = until Ctrl-C), and the standard `OTEL_*` /
//! `HYPERFLEET_LOG_*` variables. Log lines are JSON with `trace_id`, `span_id`, `event_id` and
//! `subscription`.

use cloudevents::AttributesReader;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::push::PushEndpoint;
use hyperfleet_tracing::telemetry::{self, Component};
use hyperfleet_tracing::{HandlerError, Received};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = telemetry::builder(Component::ValidationAdapter)
        .version(env!("CARGO_PKG_VERSION"))
        .install()?;
    if let Some(address) = guard.metrics_address() {
        // OTEL_METRICS_EXPORTER=prometheus
        eprintln!("serving metrics at http://{address}/metrics");
    }
    let address = var("HYPERFLEET_PUSH_ADDR", "127.0.0.1:8080");
    let topic = var("HYPERFLEET_TOPIC", "hyperfleet-clusters");
    let subscription = var("HYPERFLEET_SUBSCRIPTION", &format!("{topic}-validation"));
    let max_messages: Option<usize> = match std::env::var("HYPERFLEET_MAX_MESSAGES") {
        Ok(v) => Some(
            v.parse()
                .map_err(|_| "HYPERFLEET_MAX_MESSAGES must be a whole number")?,
        ),
        Err(_) => None,
    };
    let listener = tokio::net::TcpListener::bind(&address).await?;
    // What it runs on, on standard error so standard output stays machine-readable.
    eprintln!(
        "serving Pub/Sub push and Eventarc deliveries at http://{}/",
        listener.local_addr()?
    );

    let handled = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (handled, enough) = (Arc::clone(&handled), Arc::clone(&enough));
        move |received: Received| {
            let (handled, enough) = (Arc::clone(&handled), Arc::clone(&enough));
            async move {
                tracing::info!(
                    event_type = received.event.ty(),
                    message_id = received.message_id.as_deref().unwrap_or_default(),
                    "handled event"
                );
                let count = handled.fetch_add(1, Ordering::SeqCst) + 1;
                if max_messages.is_some_and(|max| count >= max) {
                    enough.notify_one();
                }
                Ok::<(), HandlerError>(())
            }
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = enough.notified() => {}
        }
    };
    PushEndpoint::new(&subscription, &topic)
        .settings(Settings::new().adapter("validation"))
        .serve(listener, handler, shutdown)
        .await?;
    tracing::info!(
        handled = handled.load(Ordering::SeqCst),
        "push endpoint stopped"
    );
    Ok(())
}
