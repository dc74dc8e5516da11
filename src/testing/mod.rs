//! Test support (feature `testing`): a telemetry fixture with an in-memory exporter, span
//! helpers, and the [`conformance`] suite every [`Transport`](crate::transport::Transport) runs.

pub mod conformance;
mod fixture;
pub mod spans;

pub use fixture::TestTelemetry;
