//! The conformance suite through the Pub/Sub emulator's real push deliveries: every
//! subscription the checks consume is a push subscription, delivered by the emulator to a
//! push endpoint served for each run (through a relay that outlives the runs); dead-letter
//! subscriptions are pulled, as a push user's dead-letter consumer may well do.

mod support;

use hyperfleet_tracing::testing::conformance::{self, Capability, ConformanceTarget, PushRoutes};
use hyperfleet_tracing::transport::pubsub::{
    PubSubAdmin, PubSubConfig, PubSubTransport, PushSubscription,
};
use hyperfleet_tracing::transport::{SubscriptionConfig, TransportError};
use std::sync::Arc;
use support::emulator::Emulator;
use support::push::Relay;

struct Pushed {
    transport: PubSubTransport,
    admin: PubSubAdmin,
    relay: Relay,
}

impl ConformanceTarget for Pushed {
    type Transport = PubSubTransport;

    fn transport(&self) -> PubSubTransport {
        self.transport.clone()
    }

    /// The emulator's push bodies carry neither `orderingKey` nor `deliveryAttempt` (Pub/Sub's
    /// do: tests/push_endpoint.rs reads both), and a push delivery's lease is its request:
    /// nothing extends it.
    fn capabilities(&self) -> &[Capability] {
        &[Capability::DeadLetters]
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
        let push = PushSubscription::wrapped(format!("{}{subscription}", self.relay.url));
        self.admin
            .create_push_subscription_if_missing(subscription, topic, &push, config)
            .await
    }

    async fn create_pull_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        self.admin
            .create_subscription_if_missing(subscription, topic, config)
            .await
    }

    fn push_routes(&self) -> Option<Arc<dyn PushRoutes>> {
        Some(self.relay.routes.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_emulator_push_passes_the_conformance_suite() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-conformance-push").emulator(&emulator.host);
    let target = Pushed {
        transport: PubSubTransport::connect(config.clone()).await.unwrap(),
        admin: PubSubAdmin::connect(config).await.unwrap(),
        relay: Relay::start().await,
    };
    let report = conformance::run(&target).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
}
