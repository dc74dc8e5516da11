//! `OTEL_SEMCONV_STABILITY_OPT_IN` switches every publisher and subscriber built afterwards to
//! the current messaging conventions; other categories leave them alone, `messaging/dup` wins.
//! (One test in its own binary: it sets the process environment.)

mod support;

use hyperfleet_tracing::Settings;
use hyperfleet_tracing::settings::Conventions;
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::{TracedPublisher, TracedSubscriber};
use opentelemetry::trace::SpanKind;

#[tokio::test]
async fn the_opt_in_variable_decides_the_default_conventions() {
    for (value, expected) in [
        ("", Conventions::HyperFleet),
        ("http", Conventions::HyperFleet),
        ("http,database", Conventions::HyperFleet),
        ("messaging", Conventions::Messaging),
        ("http, messaging", Conventions::Messaging),
        ("messaging,messaging/dup", Conventions::MessagingDup),
        ("messaging/dup", Conventions::MessagingDup),
        ("messagingx", Conventions::HyperFleet),
    ] {
        assert_eq!(Conventions::from_opt_in(value), expected, "{value:?}");
    }
    assert_eq!(Conventions::from_env(), Conventions::HyperFleet);

    // SAFETY: the only test of this binary, before anything reads the environment on
    // another thread.
    unsafe { std::env::set_var("OTEL_SEMCONV_STABILITY_OPT_IN", "http,messaging") };
    assert_eq!(Conventions::from_env(), Conventions::Messaging);
    let transport = support::memory::with_subscription("hyperfleet-clusters", "validation");
    let telemetry = TestTelemetry::new();
    TracedPublisher::new(transport.clone(), "hyperfleet-clusters")
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .publish(support::events::reconcile_event("c1"))
        .await
        .unwrap();
    let subscriber = TracedSubscriber::new(transport, "validation", "hyperfleet-clusters")
        .settings(Settings::new().tracer_provider(&telemetry.provider));
    support::memory::handle(subscriber, 1, |_| Ok(())).await;
    let mut spans: Vec<(String, SpanKind)> = telemetry
        .spans()
        .into_iter()
        .map(|s| (s.name.to_string(), s.span_kind))
        .collect();
    spans.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        spans,
        [
            ("ack validation".to_owned(), SpanKind::Client),
            ("receive validation".to_owned(), SpanKind::Client),
            ("send hyperfleet-clusters".to_owned(), SpanKind::Producer),
            ("subscribe validation".to_owned(), SpanKind::Consumer),
        ]
    );
}
