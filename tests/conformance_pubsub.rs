//! The conformance suite on Google's Pub/Sub emulator (started here unless
//! PUBSUB_EMULATOR_HOST names one).

mod support;

use hyperfleet_tracing::testing::conformance::{self, Capability, ConformanceTarget};
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::transport::{SubscriptionConfig, TransportError};
use support::emulator::Emulator;

struct Emulated {
    transport: PubSubTransport,
    admin: PubSubAdmin,
}

impl ConformanceTarget for Emulated {
    type Transport = PubSubTransport;

    fn transport(&self) -> PubSubTransport {
        self.transport.clone()
    }

    fn capabilities(&self) -> &[Capability] {
        Capability::ALL
    }

    async fn create_topic(&self, topic: &str) -> Result<(), TransportError> {
        self.admin.create_topic_if_missing(topic).await
    }

    async fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        self.admin
            .create_subscription_if_missing(subscription, topic, config)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_emulator_passes_the_conformance_suite() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-conformance").emulator(&emulator.host);
    let target = Emulated {
        transport: PubSubTransport::connect(config.clone()).await.unwrap(),
        admin: PubSubAdmin::connect(config).await.unwrap(),
    };
    let report = conformance::run(&target).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
}
