//! Ordering keys around publish failures on Pub/Sub (Google's emulator): after a failed
//! publish with an ordering key, later publishes with that key fail until the application
//! resumes the key, so a key's messages are never published out of order.

mod support;

use hyperfleet_tracing::transport::ErrorCode;
use hyperfleet_tracing::transport::pubsub::{PubSubAdmin, PubSubConfig, PubSubTransport};
use hyperfleet_tracing::{PublishError, PublishOptions, TracedPublisher};
use support::emulator::Emulator;
use support::events::reconcile_event;

fn keyed(key: &str) -> PublishOptions {
    PublishOptions::new().ordering_key(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_publish_failed_stays_paused_until_it_is_resumed() {
    let emulator = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    let config = PubSubConfig::new("hyperfleet-ordering").emulator(&emulator.host);
    let admin = PubSubAdmin::connect(config.clone()).await.unwrap();
    let transport = PubSubTransport::connect(config).await.unwrap();
    let topic = format!("ordering-{}", std::process::id());
    let publisher = TracedPublisher::new(transport.clone(), &topic);

    // The topic does not exist yet: the first message of key k fails.
    let failed = publisher
        .publish_with(reconcile_event("m1"), keyed("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, PublishError::Transport(e) if e.code() == ErrorCode::NotFound),
        "{failed}"
    );
    admin.create_topic_if_missing(&topic).await.unwrap();

    // m2 of the same key must not overtake m1: the key is paused.
    let paused = publisher
        .publish_with(reconcile_event("m2"), keyed("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(&paused, PublishError::Transport(e) if e.code() == ErrorCode::FailedPrecondition),
        "a later message of a failed key was published: {paused}"
    );
    // Other keys, and messages without a key, are not held up.
    publisher
        .publish_with(reconcile_event("o1"), keyed("other"))
        .await
        .unwrap();
    publisher.publish(reconcile_event("n1")).await.unwrap();

    // The application decides what to resend, then resumes the key.
    transport.resume_publish(&topic, "k");
    publisher
        .publish_with(reconcile_event("m1"), keyed("k"))
        .await
        .unwrap();
    publisher
        .publish_with(reconcile_event("m2"), keyed("k"))
        .await
        .unwrap();
}
