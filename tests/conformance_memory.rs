//! The conformance suite on the in-memory transport, with all its capabilities and with
//! none of them.

use hyperfleet_tracing::testing::conformance::{self, Outcome, WithCapabilities};
use hyperfleet_tracing::transport::memory::MemoryTransport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_conformance_suite() {
    let report = conformance::run(&MemoryTransport::new()).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.results.len(), conformance::case_names().len());
    assert!(report.not_applicable().is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_a_backend_cannot_run_are_listed_as_not_applicable_with_the_reason() {
    let report = conformance::run(&WithCapabilities::new(MemoryTransport::new(), &[])).await;
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
            "the backend offers no dead letters".to_owned()
        ))
    );
    assert_eq!(reason("trace_continuity"), Some(Outcome::Passed));
    assert_eq!(report.not_applicable().len(), 6, "{report}");
}
