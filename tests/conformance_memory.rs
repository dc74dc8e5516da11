//! The conformance suite on the in-memory transport.

use hyperfleet_tracing::testing::conformance;
use hyperfleet_tracing::transport::memory::MemoryTransport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_transport_passes_the_conformance_suite() {
    let report = conformance::run(&MemoryTransport::new()).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.results.len(), conformance::case_names().len());
}
