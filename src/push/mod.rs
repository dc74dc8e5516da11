//! Pub/Sub push and Eventarc deliveries over HTTP (feature `push`): the same spans, trace
//! continuity and ack semantics as pulling.
//!
//! A [`PushEndpoint`] answers `POST /` with one of three shapes, told apart by the request
//! itself:
//!
//! 1. a wrapped push delivery, `{"message": {data, attributes, messageId, publishTime,
//!    orderingKey}, "subscription", "deliveryAttempt"}`;
//! 2. an unwrapped push delivery (`no_wrapper` with `write_metadata`): the body is the data,
//!    the attributes are headers, `x-goog-pubsub-*` headers carry the metadata (its
//!    `Content-Type` is not trusted);
//! 3. an Eventarc `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, binary or
//!    structured, whose data is the Pub/Sub message.
//!
//! Each becomes the same [`Message`](crate::transport::Message) a pull would give and goes
//! through the same [consume pipeline](crate::consume): the event is decoded from every
//! encoding the binding reads, its trace continues from its CloudEvent extension (then
//! `googclient_*`), the `{topic} receive` and process spans carry the subscription, message
//! id, delivery attempt and ordering key, and the handler runs in the process span's context
//! with the same log fields. The request's own `traceparent` (and Eventarc's CloudEvent's) is
//! Google's delivery: the receive span links to it.
//!
//! | outcome | status | Pub/Sub |
//! |---|---|---|
//! | handled (or failed under [`AckPolicy::AlwaysAck`](crate::settings::AckPolicy::AlwaysAck)) | 204 | ack |
//! | handler error or panic, undecodable message | 500 | nack: redelivery, then dead-lettering |
//! | abandoned at shutdown | 503 | nack |
//! | too many in flight | 429 | nack, and Pub/Sub slows down |
//! | body over the limit, or larger than the memory budget | 413 | nack |
//! | not within the memory budget now | 429 | nack, and Pub/Sub slows down |
//! | no push delivery at all | 400, with the reason ([`NotAPushDelivery`]) | nack |
//! | refused by the verifier | 401 / 403 ([`Rejection`]) | nack |
//!
//! The `Authorization` header is only shown to the verifier: it never reaches a span or a log.

mod budget;
mod delivery;
mod error;
mod eventarc;
mod in_flight;
mod pubsub_message;
mod service;
mod unwrapped;

pub use error::{NotAPushDelivery, Rejection};
pub use eventarc::MESSAGE_PUBLISHED;

use crate::consume::{ConsumerConfig, Handler};
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use in_flight::InFlight;
use service::Endpoint;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Checks a request's headers before anything of it is read (Google's OIDC token, say).
pub type Verifier = Arc<dyn Fn(&HeaderMap) -> Result<(), Rejection> + Send + Sync>;

/// Pub/Sub's largest message (10 MB), base64-encoded in a wrapped body, with room for its
/// attributes and the envelope.
pub const DEFAULT_BODY_LIMIT: usize = 10_000_000 / 3 * 4 + 1024 * 1024;
/// Deliveries handled at once by default; more are answered 429.
const DEFAULT_CONCURRENCY: usize = 64;
/// What the deliveries in flight may hold at once by default: a quarter of Cloud Run's common
/// 512 MiB instance, the rest left to the application. Two of the largest deliveries fit at
/// once; small ones are bounded by the concurrency first.
pub const DEFAULT_MEMORY_BUDGET: usize = 128 * 1024 * 1024;
/// As the pull loop: inside Kubernetes' default 30-second termination grace period.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// What shutdown may take past its timeout, for abandoned deliveries to be answered.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(1);

/// Serves Pub/Sub push and Eventarc deliveries to a [`Handler`], each inside the standard's
/// spans. Settings are plain values until [`router`](Self::router) or
/// [`serve`](Self::serve) builds the endpoint.
///
/// ```
/// use hyperfleet_tracing::push::PushEndpoint;
/// use hyperfleet_tracing::{HandlerError, Received, Settings};
///
/// # async fn f() -> std::io::Result<()> {
/// let endpoint = PushEndpoint::new("validation-push", "hyperfleet-clusters")
///     .settings(Settings::new().adapter("validation"));
/// let handler = |received: Received| async move {
///     println!("cluster event {}", cloudevents::AttributesReader::id(&received.event));
///     Ok::<(), HandlerError>(())
/// };
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// endpoint.serve(listener, handler, async {}).await
/// # }
/// ```
pub struct PushEndpoint {
    config: ConsumerConfig,
    verifier: Option<Verifier>,
    body_limit: usize,
    memory_budget: usize,
    concurrency: usize,
    shutdown_timeout: Duration,
}

impl PushEndpoint {
    /// An endpoint for deliveries of `subscription`, whose messages come from `topic` (named
    /// in the spans): the same order as [`TracedSubscriber::new`](crate::TracedSubscriber::new).
    /// `subscription` names the deliveries that do not name their own (wrapped and unwrapped
    /// push, and Eventarc's `MessagePublishedData`, do).
    ///
    /// Defaults: [`Settings::new`](crate::Settings::new), a body limit of
    /// [`DEFAULT_BODY_LIMIT`], a memory budget of [`DEFAULT_MEMORY_BUDGET`], 64 deliveries at
    /// once, a 25-second shutdown timeout and no verifier.
    pub fn new(subscription: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            config: ConsumerConfig::new(subscription.into(), topic.into()),
            verifier: None,
            body_limit: DEFAULT_BODY_LIMIT,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            concurrency: DEFAULT_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Uses `settings` (tracer provider, propagator, conventions, metrics, adapter, parent
    /// mode, ack policy, hooks) instead of the defaults.
    pub fn settings(mut self, settings: crate::Settings) -> Self {
        self.config.settings = settings;
        self
    }

    /// Checks every request's headers first; a rejection is answered 401 or 403 and nothing
    /// of the request is processed.
    pub fn verifier<F>(mut self, verify: F) -> Self
    where
        F: Fn(&HeaderMap) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.verifier = Some(Arc::new(verify));
        self
    }

    /// Sets the largest body read (default [`DEFAULT_BODY_LIMIT`]); longer ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets what the deliveries in flight may hold at once, in bytes (default
    /// [`DEFAULT_MEMORY_BUDGET`], 128 MiB). Each request is charged three times its
    /// `Content-Length` (the body limit when it names none) before its body is read: the body,
    /// the data decoded from it, the event decoded from that. A request that does not fit now
    /// gets 429 (Pub/Sub slows down and delivers it again); one that can never fit, 413.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Sets how many deliveries are handled at once (at least 1); more get 429.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Sets how long [`serve`](Self::serve) waits for deliveries in flight once shutdown
    /// starts (default 25 s); those still running then are answered 503, so Pub/Sub delivers
    /// them again.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The endpoint as an axum router answering `POST /` (nest it to serve another path).
    /// Shutdown is then the server's: [`serve`](Self::serve) adds the timeout.
    pub fn router<H: Handler>(self, handler: H) -> Router {
        self.build(handler).0
    }

    fn build<H: Handler>(self, handler: H) -> (Router, InFlight) {
        let in_flight = InFlight::default();
        let endpoint = Arc::new(Endpoint {
            config: self.config,
            verifier: self.verifier,
            budget: budget::MemoryBudget::new(self.memory_budget, self.body_limit),
            handler: Arc::new(handler),
            in_flight: in_flight.clone(),
            consumers: Mutex::default(),
            overflow: Mutex::default(),
        });
        let limit = tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many deliveries in flight",
                )
            }))
            .load_shed()
            .concurrency_limit(self.concurrency);
        let router = Router::new()
            .route("/", post(service::deliver::<H>))
            .with_state(endpoint)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(limit);
        (router, in_flight)
    }

    /// Serves deliveries on `listener` until `shutdown` completes, then stops accepting,
    /// waits for the deliveries in flight (at most the shutdown timeout), answers those still
    /// running 503 and returns: within the shutdown timeout plus one second, as the pull loop.
    pub async fn serve<H, S>(
        self,
        listener: tokio::net::TcpListener,
        handler: H,
        shutdown: S,
    ) -> std::io::Result<()>
    where
        H: Handler,
        S: Future<Output = ()> + Send + 'static,
    {
        let timeout = self.shutdown_timeout;
        let (router, in_flight) = self.build(handler);
        let (started, shutdown_started) = tokio::sync::oneshot::channel();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = started.send(());
        });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            _ = shutdown_started => {}
        }
        let deadline = tokio::time::Instant::now() + timeout;
        if let Ok(result) = tokio::time::timeout_at(deadline, &mut server).await {
            return result;
        }
        in_flight.abandon();
        tokio::time::timeout_at(deadline + SHUTDOWN_MARGIN, &mut server)
            .await
            .unwrap_or(Ok(()))
    }
}
