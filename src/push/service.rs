//! The running endpoint: verify, read, consume, answer.

use super::delivery::{self, PushDelivery};
use super::in_flight::InFlight;
use super::{NotAPushDelivery, Verifier};
use crate::carrier::{Propagation, RequestHeaders, StrictExtractor};
use crate::consume::{Consumer, ConsumerConfig, DeliveryFacts, Handler, Verdict};
use crate::span::attributes::{self, GCP_PUBSUB};
use crate::sync::lock;
use crate::transport::{Acknowledger, TransportError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{Link, TraceContextExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most subscriptions whose consume pipelines are kept built. Subscription names come from
/// requests, so past these the deliveries share one pipeline whose spans and metrics name
/// [`OTHER_SUBSCRIPTIONS`]: span names, metric series, interned names and the CPU a request
/// costs stay bounded whatever names callers send.
const MAX_CACHED_SUBSCRIPTIONS: usize = 64;

/// The subscription that span names and metric labels name for deliveries of subscriptions
/// beyond the cache. Their receive span's subscription attribute, the handler and the log lines
/// still see the delivery's own (bounded) name.
const OTHER_SUBSCRIPTIONS: &str = "_other";

/// What every request of one endpoint shares.
pub(super) struct Endpoint<H> {
    pub(super) config: ConsumerConfig,
    pub(super) verifier: Option<Verifier>,
    pub(super) budget: super::budget::MemoryBudget,
    pub(super) handler: Arc<H>,
    pub(super) in_flight: InFlight,
    pub(super) consumers: Mutex<HashMap<String, Arc<Consumer>>>,
    /// The one pipeline of the subscriptions beyond the cache, built on first need.
    pub(super) overflow: Mutex<Option<Arc<Consumer>>>,
}

impl<H: Handler> Endpoint<H> {
    /// The consume pipeline of `subscription` (the endpoint's own when the delivery names
    /// none), and the delivery's own subscription when the pipeline names another.
    fn consumer(&self, subscription: Option<&str>) -> (Arc<Consumer>, Option<String>) {
        let name =
            subscription.map_or_else(|| self.config.subscription.clone(), attributes::bounded);
        let mut consumers = lock(&self.consumers);
        if let Some(consumer) = consumers.get(&name) {
            return (Arc::clone(consumer), None);
        }
        // The endpoint's own subscription always gets its pipeline, however many names came
        // first.
        if consumers.len() < MAX_CACHED_SUBSCRIPTIONS || name == self.config.subscription {
            let consumer = Arc::new(Consumer::new(self.build(&name), GCP_PUBSUB, None, None));
            consumers.insert(name, Arc::clone(&consumer));
            return (consumer, None);
        }
        drop(consumers);
        let overflow = lock(&self.overflow)
            .get_or_insert_with(|| {
                let mut stand_in = self.build(OTHER_SUBSCRIPTIONS);
                stand_in.stand_in = true;
                Arc::new(Consumer::new(stand_in, GCP_PUBSUB, None, None))
            })
            .clone();
        (overflow, Some(name))
    }

    /// The endpoint's pipeline settings for `subscription`.
    fn build(&self, subscription: &str) -> ConsumerConfig {
        let mut config = self.config.clone();
        config.subscription = subscription.to_owned();
        config
    }
}

/// Handles one push request.
pub(super) async fn deliver<H: Handler>(
    State(endpoint): State<Arc<Endpoint<H>>>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    if let Some(verifier) = &endpoint.verifier
        && let Err(rejection) = verifier(&headers)
    {
        tracing::warn!(reason = %bounded(&rejection), "push request rejected");
        return (rejection.status(), rejection.to_string()).into_response();
    }
    // Reserved before the body is read, held until the answer.
    let _reserved = match endpoint.budget.reserve(&headers) {
        Ok(reserved) => reserved,
        Err(status) => return (status, "over the endpoint's memory budget").into_response(),
    };
    // The body limit is the router's `DefaultBodyLimit`; over it, 413.
    let body = match Bytes::from_request(Request::from_parts(parts, body), &()).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let delivery = match delivery::read(&headers, &body) {
        Ok(delivery) => delivery,
        Err(reason) => return not_a_delivery(&reason),
    };
    drop(body);
    tracing::debug!(shape = ?delivery.shape, "push delivery");
    let links = delivery_links(&endpoint.config.settings.propagation, &headers, &delivery);
    let PushDelivery {
        message,
        subscription,
        delivery_attempt,
        ..
    } = delivery;
    let (consumer, subscription) = endpoint.consumer(subscription.as_deref());
    let facts = DeliveryFacts {
        delivery_attempt,
        links,
        subscription,
        ..DeliveryFacts::default()
    };
    let consume = consumer.consume(endpoint.handler.as_ref(), message, facts);
    let Some(consumed) = endpoint.in_flight.run(consume).await else {
        // Abandoned at shutdown: a nack, so Pub/Sub delivers it again.
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    };
    let status = match consumed.verdict() {
        Verdict::Ack => StatusCode::NO_CONTENT,
        Verdict::Nack => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The answer is the settlement: recorded as one (the settle span, its duration).
    consumed.settle(Box::new(ByAnswer)).await;
    status.into_response()
}

/// A push delivery's settlement: the status of the answer, which the handler returns.
struct ByAnswer;

#[async_trait::async_trait]
impl Acknowledger for ByAnswer {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        Ok(())
    }
}

/// 400 with the reason, which is also logged (bounded: it may quote the request).
fn not_a_delivery(reason: &NotAPushDelivery) -> Response {
    tracing::warn!(
        error_type = reason.error_type(),
        reason = %bounded(reason),
        "not a push delivery"
    );
    (
        StatusCode::BAD_REQUEST,
        format!(
            "not a push delivery ({}): {}",
            reason.error_type(),
            bounded(reason)
        ),
    )
        .into_response()
}

fn bounded(error: &dyn std::fmt::Display) -> String {
    attributes::bounded(&error.to_string())
}

/// The delivery's own contexts, linked from the receive span: the request's `traceparent`
/// (Google's delivery) and, for Eventarc, its CloudEvent's.
fn delivery_links(
    propagation: &Propagation,
    headers: &HeaderMap,
    delivery: &PushDelivery,
) -> Vec<Link> {
    let outer: HashMap<String, String> = delivery.outer_context.iter().cloned().collect();
    let contexts = [
        propagation.extract(&StrictExtractor(RequestHeaders(headers))),
        propagation.extract(&StrictExtractor(outer)),
    ];
    let mut links: Vec<Link> = Vec::new();
    for cx in contexts {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() && !links.iter().any(|l| l.span_context == *sc) {
            links.push(Link::with_context(sc.clone()));
        }
    }
    links
}
