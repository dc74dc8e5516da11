//! Shared by the benchmarks.
#![allow(dead_code)]

#[path = "../../tests/support/process.rs"]
pub mod process;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::hint::black_box;

/// An exporter that drops every span: the cost measured is ours, not an exporter's.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// The `i`th reconcile event, shaped like the Sentinel's.
pub fn event(i: u64) -> Event {
    EventBuilderV10::new()
        .id(format!("event-{i}"))
        .source("hyperfleet-sentinel")
        .ty("com.redhat.hyperfleet.cluster.reconcile")
        .data(
            "application/json",
            serde_json::json!({"id": format!("c{i}"), "kind": "Cluster", "href": "/clusters", "generation": 1}),
        )
        .build()
        .expect("valid event")
}
