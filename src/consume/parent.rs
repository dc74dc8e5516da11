//! Where a delivery's trace continues from: the creation context, which
//! [`ParentMode::resolve`](crate::settings::ParentMode) makes a parent or a link.

use crate::carrier::{self, Propagation};
use cloudevents::Event;
use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use std::collections::BTreeMap;

/// The context the producer left: the CloudEvent's own extension first, then, when
/// `googclient_fallback` is on and the event carries none, a Google client's `googclient_*`
/// attributes.
pub(super) fn creation_context(
    propagation: &Propagation,
    event: &Event,
    attributes: &BTreeMap<String, String>,
    googclient_fallback: bool,
) -> Context {
    let creation = propagation.extract_event(event);
    if googclient_fallback && !creation.span().span_context().is_valid() {
        let from_client = carrier::extract_googclient(attributes);
        if from_client.span().span_context().is_valid() {
            return from_client;
        }
    }
    creation
}
