//! Installing globally: the propagators of OTEL_PROPAGATORS reach the carrier (so `none`
//! turns propagation through events off), and a second install is a clear error.
//! Its own test binary: it changes process-wide state.

use cloudevents::{EventBuilder, EventBuilderV10};
use hyperfleet_tracing::telemetry::{self, Component, Config, TelemetryError};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_sets_the_propagators_and_refuses_a_second_time() {
    let config = |propagators: &'static str| {
        Config::from_lookup("svc", move |k| match k {
            "OTEL_PROPAGATORS" => Some(propagators.to_owned()),
            "OTEL_TRACES_EXPORTER" => Some("none".to_owned()),
            _ => None,
        })
        .unwrap()
    };
    let _guard = telemetry::builder(Component::custom("hyperfleet-test"))
        .config(config("none"))
        .log_writer(std::io::sink)
        .install()
        .unwrap();

    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(7),
        SpanId::from(9),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let mut event = EventBuilderV10::new()
        .id("1")
        .source("s")
        .ty("t")
        .build()
        .unwrap();
    hyperfleet_tracing::carrier::inject(&cx, &mut event);
    assert_eq!(
        event.extension("traceparent"),
        None,
        "OTEL_PROPAGATORS=none still propagated"
    );

    let again = telemetry::builder(Component::Api)
        .config(config("tracecontext"))
        .log_writer(std::io::sink)
        .install();
    assert!(matches!(
        again,
        Err(TelemetryError::SubscriberAlreadySet(_))
    ));
    hyperfleet_tracing::carrier::inject(&cx, &mut event);
    assert_eq!(
        event.extension("traceparent"),
        None,
        "a failed install changed the propagators"
    );
}
