//! The conformance suite on the in-memory transport, with all its capabilities and with
//! none of them.

use hyperfleet_tracing::testing::conformance::{self, Capability, ConformanceTarget, Outcome};
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{SubscriptionConfig, TransportError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_conformance_suite() {
    let report = conformance::run(&MemoryTransport::new()).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.results.len(), conformance::case_names().len());
    assert!(report.not_applicable().is_empty(), "{report}");
}

/// The memory transport, declaring that it offers nothing optional.
struct Bare(MemoryTransport);

impl ConformanceTarget for Bare {
    type Transport = MemoryTransport;

    fn transport(&self) -> MemoryTransport {
        self.0.clone()
    }

    fn capabilities(&self) -> &[Capability] {
        &[]
    }

    async fn create_topic(&self, topic: &str) -> Result<(), TransportError> {
        self.0.create_topic(topic)
    }

    async fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        self.0
            .create_subscription(subscription, topic, config.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_a_backend_cannot_run_are_listed_as_not_applicable_with_the_reason() {
    let report = conformance::run(&Bare(MemoryTransport::new())).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.results.len(), conformance::case_names().len());
    let reason = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.outcome.clone())
    };
    assert_eq!(
        reason("ordering_key"),
        Some(Outcome::NotApplicable(
            "the backend offers no ordering keys".to_owned()
        ))
    );
    assert_eq!(
        reason("held_message_outlives_its_ack_deadline"),
        Some(Outcome::NotApplicable(
            "the backend offers no lease extension".to_owned()
        ))
    );
    assert_eq!(
        reason("handler_error_nacks_and_redelivers"),
        Some(Outcome::NotApplicable(
            "the backend offers no delivery attempts, no dead letters".to_owned()
        ))
    );
    assert_eq!(reason("trace_continuity"), Some(Outcome::Passed));
    assert_eq!(report.not_applicable().len(), 5, "{report}");
}
