//! Test support (feature `testing`): a telemetry fixture with an in-memory exporter, span
//! helpers, the [`conformance`] suite every [`Transport`](crate::transport::Transport) runs, and
//! the [`fuzz`] harnesses.

pub mod conformance;
mod events;
mod fixture;
pub mod fuzz;
mod metrics;
pub mod spans;

pub use events::reconcile_event;
pub use fixture::TestTelemetry;
pub use metrics::TestMetrics;
