//! OpenTelemetry traces through CloudEvents on Google Cloud Pub/Sub, following the HyperFleet
//! Tracing and Telemetry Standard.
//!
//! At the root: [`TracedPublisher`], [`TracedSubscriber`], the [`Settings`] they (and the push
//! endpoint, and the HTTP glue) share, and what a handler sees ([`Received`],
//! [`HandlerError`]). The modules follow the data path, top to bottom:
//!
//! 1. [`carrier`]: trace context in the event's `traceparent` / `tracestate` extensions
//!    ([`carrier::inject`], [`carrier::extract`]).
//! 2. [`binding`]: the event in a Pub/Sub message, structured or binary, and back from any
//!    encoding found in the wild.
//! 3. [`transport`]: a pluggable [`Transport`](transport::Transport) that moves messages, with
//!    an in-memory backend that behaves like Pub/Sub.
//! 4. [`metrics`] and [`settings`]: where spans and metrics go, and how they look.
//! 5. [`consume`]: the consume pipeline every way in shares — decode, continue the trace,
//!    `{topic} receive` and `adapter.process` spans, the handler run, ack or nack.
//! 6. [`TracedSubscriber`] (the pull loop over the pipeline), [`push`] (the same pipeline
//!    behind an HTTP endpoint) and [`TracedPublisher`] (the `{topic} publish` span around the
//!    transport).
//!
//! Beside it: [`telemetry`] (feature `telemetry`) sets everything up from the
//! `OTEL_*` variables; [`http`] (features `http-server`, `http-client`) and [`database`] make
//! the standard's HTTP and database spans; with the `testing` feature, [`testing`] holds the
//! conformance suite every transport runs.
//!
//! # The ways in and out
//!
//! Publish, and pull what was published: the receive span continues the publish span's trace
//! (here over the in-memory transport; [`transport::pubsub`] is Google Cloud Pub/Sub).
//!
//! ```
//! use cloudevents::{AttributesReader, EventBuilder};
//! use hyperfleet_tracing::transport::SubscriptionConfig;
//! use hyperfleet_tracing::transport::memory::MemoryTransport;
//! use hyperfleet_tracing::{HandlerError, Received, TracedPublisher, TracedSubscriber};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = MemoryTransport::new();
//! transport.create_topic("hyperfleet-clusters")?;
//! transport.create_subscription("validation", "hyperfleet-clusters", SubscriptionConfig::default())?;
//!
//! let event = cloudevents::EventBuilderV10::new()
//!     .id("e-1").source("hyperfleet-sentinel").ty("com.redhat.hyperfleet.cluster.reconcile.v1")
//!     .build()?;
//! let published = TracedPublisher::new(transport.clone(), "hyperfleet-clusters").publish(event).await?;
//!
//! let (done, mut handled) = tokio::sync::mpsc::unbounded_channel();
//! TracedSubscriber::new(transport, "validation", "hyperfleet-clusters")
//!     .run(
//!         move |received: Received| {
//!             // Runs inside `adapter.process`, in the publisher's trace.
//!             let _ = done.send(received.event.id().to_owned());
//!             async { Ok::<(), HandlerError>(()) }
//!         },
//!         async move { let _ = handled.recv().await; },
//!     )
//!     .await?;
//! # let _ = published;
//! # Ok(()) }
//! ```
//!
//! Receive Pub/Sub push and Eventarc deliveries over HTTP (feature `push`): the same pipeline,
//! the same spans; the HTTP status settles the delivery.
//!
//! ```
//! # #[cfg(feature = "push")]
//! # {
//! use hyperfleet_tracing::push::PushEndpoint;
//! use hyperfleet_tracing::{HandlerError, Received};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/", listener.local_addr()?);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let served = tokio::spawn(PushEndpoint::new("validation-push", "hyperfleet-clusters").serve(
//!     listener,
//!     |_: Received| async { Ok::<(), HandlerError>(()) },
//!     async move { let _ = stopped.await; },
//! ));
//!
//! // What a push subscription sends: the message (a structured CloudEvent) in an envelope.
//! let body = r#"{"subscription": "projects/p/subscriptions/validation-push",
//!     "message": {"messageId": "1", "attributes": {},
//!     "data": "eyJzcGVjdmVyc2lvbiI6IjEuMCIsImlkIjoiZS0xIiwic291cmNlIjoiaHlwZXJmbGVldC1zZW50aW5lbCIsInR5cGUiOiJyZWNvbmNpbGUifQ=="}}"#;
//! let response = reqwest::Client::new().post(&url).body(body).send().await?;
//! assert_eq!(response.status(), 204); // handled: acked
//! let _ = stop.send(());
//! served.await??;
//! # Ok(()) }
//! # }
//! # #[cfg(not(feature = "push"))]
//! # fn main() {}
//! ```
//!
//! Carry the context by hand, on any event: [`carrier::inject`] and [`carrier::extract`] (the crate's strict
//! [`W3cTraceContext`](carrier::W3cTraceContext) unless the application set a propagator).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The data path, each module using only those above it (one group each, so that the
// order stays).

/// Leaves: the transport-neutral message and the CloudEvents naming rules.
mod message;

pub mod carrier;

pub mod binding;

pub mod transport;

/// The span vocabulary: attribute names, conventions, templates, the tracer.
mod span;

pub mod metrics;

pub mod settings;

pub mod consume;

/// The traced publisher.
mod publisher;

/// The pull loop.
mod subscriber;

#[cfg(feature = "push")]
pub mod push;

// Beside it.

pub mod database;
#[cfg(any(feature = "http-server", feature = "http-client"))]
pub mod http;
mod sync;
#[cfg(feature = "telemetry")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use consume::handler::{HandlerError, Received};
pub use publisher::{PublishError, PublishOptions, Published, TracedPublisher};
pub use settings::Settings;
pub use span::attributes;
pub use subscriber::{SubscribeError, TracedSubscriber};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
