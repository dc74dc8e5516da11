//! Where a delivery's trace continues from: the creation context, and the parent or link it
//! becomes under the [`ParentMode`].

use super::ParentMode;
use crate::carrier::{self, Propagation};
use cloudevents::Event;
use opentelemetry::Context;
use opentelemetry::trace::{Link, TraceContextExt};
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

/// The receive span's parent and links: a child of the creation context, or a new root linked
/// to it.
pub(super) fn parent_and_links(creation: Context, mode: ParentMode) -> (Context, Vec<Link>) {
    match mode {
        ParentMode::Child => (creation, Vec::new()),
        ParentMode::Link => {
            let span_context = creation.span().span_context().clone();
            let links = if span_context.is_valid() {
                vec![Link::with_context(span_context)]
            } else {
                Vec::new()
            };
            (Context::new(), links)
        }
    }
}
