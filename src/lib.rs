//! OpenTelemetry traces through CloudEvents on Google Cloud Pub/Sub, following the HyperFleet
//! Tracing and Telemetry Standard.
//!
//! The data path, top to bottom:
//!
//! 1. [`carrier`]: trace context in the event's `traceparent` / `tracestate` extensions
//!    ([`inject`], [`extract`]).
//! 2. [`binding`]: the event in a Pub/Sub message, structured or binary, and back from any
//!    encoding found in the wild.
//! 3. [`transport`]: a pluggable [`Transport`] that moves messages, with an in-memory backend
//!    that behaves like Pub/Sub.
//! 4. [`consume`]: the consume pipeline every way in shares — decode, continue the trace,
//!    `{topic} receive` and `adapter.process` spans, the handler run, ack or nack.
//! 5. [`TracedSubscriber`] (the pull loop over the pipeline) / [`TracedPublisher`] (the
//!    `{topic} publish` span around the transport).
//!
//! Beside it: [`telemetry`] (feature `telemetry`, the default) sets everything up from the
//! `OTEL_*` variables; [`http`] (features `http-server`, `http-client`) and [`database`] make
//! the standard's HTTP and database spans; with the `testing` feature, [`testing`] holds the
//! conformance suite every transport runs.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod attributes;
pub mod binding;
pub mod carrier;
pub mod consume;
pub mod database;
mod event_names;
#[cfg(any(feature = "http-server", feature = "http-client"))]
pub mod http;
mod instrumentation;
pub mod log_fields;
mod message;
pub mod naming;
pub mod publisher;
#[cfg(feature = "push")]
pub mod push;
pub mod subscriber;
mod sync;
#[cfg(feature = "telemetry")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use binding::Encoding;
pub use carrier::{EventExtractor, EventInjector, OverwritePolicy, Propagation, extract, inject};
pub use consume::{Handler, HandlerError, Received};
pub use instrumentation::TracerSource;
pub use log_fields::MessageLogFields;
pub use naming::SpanNaming;
pub use publisher::{PublishError, PublishOptions, Published, PublisherBuilder, TracedPublisher};
pub use subscriber::{AckPolicy, ParentMode, SubscribeError, TracedSubscriber};
pub use transport::{DeadLetterPolicy, Message, SubscriptionConfig, Transport};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
