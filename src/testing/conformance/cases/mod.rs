//! The checks, one registry of them, split by theme. Each returns `Err` with what it found
//! wrong.

use super::harness::{Harness, Seen};
use super::{Capability, ConformanceTarget};
use crate::binding::{self, Encoding};
use crate::carrier::OverwritePolicy;
use crate::publisher::PublishOptions;
use crate::span::attributes::*;
use crate::testing::spans::{attribute, attribute_str, children_of, is_root, named, single};
use crate::transport::{DeadLetterPolicy, Message, SubscriptionConfig, Transport};
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, AttributesWriter, Event};
use futures::StreamExt;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::SpanData;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

mod context;
mod delivery;
mod encoding;
mod spans;

/// One list of every case: its name, the capabilities it needs, and how it runs. Both the
/// table of names and the dispatcher are made from it, so they cannot disagree.
macro_rules! registry {
    ($target:ident; $( $name:literal [$($need:ident),*] => $run:expr ),* $(,)?) => {
        /// Every case's name and needs, in run order.
        pub(super) const ALL: &[(&str, &[Capability])] = &[
            $( ($name, &[$(Capability::$need),*]) ),*
        ];

        /// Runs the case called `name`; `None` when there is none.
        pub(super) async fn run<T: ConformanceTarget>(
            name: &str,
            $target: &T,
        ) -> Option<Result<(), String>> {
            Some(match name {
                $( $name => $run.await, )*
                _ => return None,
            })
        }
    };
}

registry! { target;
    "trace_continuity" [] => context::trace_continuity(target),
    "tracestate_round_trip" [] => context::tracestate_round_trip(target),
    "unsampled_parent_honoured" [] => context::unsampled_parent(target),
    "invalid_traceparent_starts_new_trace" [] => context::invalid_traceparent(target),
    "link_mode_keeps_baggage" [] => context::link_mode_keeps_baggage(target),
    "preserve_existing_traceparent" []
        => context::existing_traceparent(target, OverwritePolicy::Preserve),
    "overwrite_existing_traceparent" []
        => context::existing_traceparent(target, OverwritePolicy::Overwrite),
    "structured_encoding" [] => encoding::encoding(target, Encoding::Structured),
    "binary_encoding" [] => encoding::encoding(target, Encoding::Binary),
    "fan_out_to_two_subscriptions" [] => delivery::fan_out(target),
    "handler_error_nacks_and_redelivers" [DeadLetters]
        => delivery::failing_handler(target, false),
    "handler_panic_is_caught" [DeadLetters]
        => delivery::failing_handler(target, true),
    "span_names_kinds_attributes" [] => spans::names_kinds_attributes(target),
    "ordering_key" [OrderingKeys] => delivery::ordering_key(target),
    "no_payload_in_attributes" [] => spans::no_payload(target),
    "metrics_count_what_the_spans_show" [] => spans::metrics_match_spans(target),
    "current_messaging_conventions" [] => spans::current_conventions(target),
    "undecodable_message_is_nacked" [DeadLetters]
        => delivery::undecodable(target),
    "held_message_outlives_its_ack_deadline" [LeaseExtension]
        => delivery::held_past_ack_deadline(target),
    "abandoned_delivery_comes_again" [] => delivery::abandoned_delivery_comes_again(target),
    "dead_letter_keeps_its_trace" [DeadLetters] => delivery::dead_letter_keeps_trace(target),
}

const EXISTING_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A HyperFleet cluster reconcile event, as the Sentinel publishes it.
fn reconcile_event(cluster: &str) -> Result<Event, String> {
    crate::testing::reconcile_event(&format!("event-{cluster}"), cluster)
        .map_err(|e| format!("cannot build the test event: {e}"))
}

fn under(parent: &Context) -> PublishOptions {
    PublishOptions::new().parent(parent.clone())
}
fn root_span_id(cx: &Context) -> SpanId {
    cx.span().span_context().span_id()
}
fn text(event: &Event, name: &str) -> Option<String> {
    match event.extension(name) {
        Some(ExtensionValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}
fn receive_name<T: ConformanceTarget>(h: &Harness<'_, T>) -> String {
    format!("{} receive", h.topic)
}
fn publish_name<T: ConformanceTarget>(h: &Harness<'_, T>) -> String {
    format!("{} publish", h.topic)
}
/// The receive span is the publish span's child, the process span the receive span's, and
/// the handler runs in the process span's context.
fn check_chain(
    spans: &[SpanData],
    publish: &SpanData,
    seen: &Seen,
    receive_name: &str,
) -> Result<(), String> {
    let receives = children_of(spans, publish)
        .into_iter()
        .filter(|s| s.name == receive_name)
        .collect::<Vec<_>>();
    ensure!(
        !receives.is_empty(),
        "no {receive_name:?} span is a child of the publish span"
    );
    let trace_id = publish.span_context.trace_id();
    let process = spans
        .iter()
        .find(|s| s.span_context.span_id() == seen.current.span_id())
        .ok_or("the handler's current context is not an exported span")?;
    ensure!(
        process.name == "adapter.process",
        "the handler ran in {:?}, not adapter.process",
        process.name
    );
    ensure!(
        receives
            .iter()
            .any(|r| r.span_context.span_id() == process.parent_span_id),
        "the process span's parent is not a receive span under the publish span"
    );
    ensure!(
        process.span_context.trace_id() == trace_id,
        "the process span is in another trace"
    );
    ensure!(
        seen.received.context.span().span_context().span_id() == process.span_context.span_id(),
        "Received::context is not the process span"
    );
    Ok(())
}
