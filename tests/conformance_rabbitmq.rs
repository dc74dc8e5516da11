//! The conformance suite on a real RabbitMQ node started for the test: every case passes,
//! and those the backend cannot offer (ordering keys) are reported not applicable with the
//! reason.

mod support;

use hyperfleet_tracing::testing::conformance::{self, Capability, ConformanceTarget};
use hyperfleet_tracing::transport::rabbitmq::{
    QueueKind, RabbitMqAdmin, RabbitMqConfig, RabbitMqTransport,
};
use hyperfleet_tracing::transport::{SubscriptionConfig, TransportError};
use support::rabbitmq::RabbitNode;

struct Rabbit {
    transport: RabbitMqTransport,
    admin: RabbitMqAdmin,
}

/// Queues with a dead-letter policy are quorum queues: they count deliveries and dead-letter.
/// RabbitMQ has no ack deadline: a held delivery stays with its consumer.
const CAPABILITIES: &[Capability] = &[
    Capability::DeliveryAttempts,
    Capability::DeadLetters,
    Capability::LeaseExtension,
];

impl ConformanceTarget for Rabbit {
    type Transport = RabbitMqTransport;

    fn transport(&self) -> RabbitMqTransport {
        self.transport.clone()
    }

    fn capabilities(&self) -> &[Capability] {
        CAPABILITIES
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
        let kind = match config.dead_letter {
            Some(_) => QueueKind::Quorum,
            None => QueueKind::Classic,
        };
        self.admin
            .create_subscription_if_missing(subscription, topic, kind, config)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_passes_the_conformance_suite() {
    // What the client and the transport log, shown when the test fails.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "lapin=info,hyperfleet_tracing=debug".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let transport = RabbitMqTransport::connect(RabbitMqConfig::new(&node.url))
        .await
        .unwrap();
    let target = Rabbit {
        admin: RabbitMqAdmin::new(&transport),
        transport,
    };
    let report = conformance::run(&target).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    assert!(text.contains("not applicable"), "{report}");
    drop(node);
}
