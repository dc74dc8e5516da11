//! Settling under stress: a nack that takes its time, a shutdown in the middle of keyed
//! failures, and deliveries of a failed key that arrive before its redelivery.

mod support;

use cloudevents::AttributesReader;
use futures::StreamExt;
use hyperfleet_tracing::transport::memory::MemoryTransport;
use hyperfleet_tracing::transport::{
    Acknowledger, Delivery, DeliveryStream, Message, SubscriptionConfig, Transport, TransportError,
};
use hyperfleet_tracing::{
    HandlerError, PublishOptions, Received, TracedPublisher, TracedSubscriber,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

const TOPIC: &str = "hyperfleet-clusters";
const SUBSCRIPTION: &str = "validation";

/// The memory transport, but every nack first waits `nack_delay`.
#[derive(Clone)]
struct SlowNacks {
    inner: MemoryTransport,
    nack_delay: Duration,
    acks: Arc<AtomicUsize>,
}

struct SlowAcker {
    inner: Box<dyn Acknowledger>,
    delay: Duration,
    acks: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Acknowledger for SlowAcker {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        self.acks.fetch_add(1, Ordering::SeqCst);
        self.inner.ack().await
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        tokio::time::sleep(self.delay).await;
        self.inner.nack().await
    }
}

impl Transport for SlowNacks {
    fn system(&self) -> &'static str {
        self.inner.system()
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        self.inner.publish(topic, message).await
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let (delay, acks) = (self.nack_delay, Arc::clone(&self.acks));
        let stream = self.inner.subscribe(subscription).await?;
        Ok(stream.map_deliveries(move |delivery| {
            let (message, attempt, acker) = delivery.into_parts();
            let acker = SlowAcker {
                inner: acker,
                delay,
                acks: Arc::clone(&acks),
            };
            Delivery::new(message, attempt, Box::new(acker))
        }))
    }
}

fn memory(ordering: bool) -> MemoryTransport {
    let config = SubscriptionConfig::default().message_ordering(ordering);
    support::memory::subscribed(MemoryTransport::new(), TOPIC, SUBSCRIPTION, config)
}

async fn publish_keyed(transport: &MemoryTransport, keys: usize, per_key: usize) {
    let publisher = TracedPublisher::new(transport.clone(), TOPIC);
    for i in 0..per_key {
        for k in 0..keys {
            let event = support::events::reconcile_event(&format!("k{k}-{i}"));
            let options = PublishOptions::new().ordering_key(format!("k{k}"));
            publisher.publish_with(event, options).await.unwrap();
        }
    }
}

/// Waits until every lease of the subscription has come back (acked or returned).
async fn settled(transport: &MemoryTransport) {
    let wait = async {
        while transport.outstanding(SUBSCRIPTION).unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("leases still out 10 s after the loop returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_among_slow_nacks_and_keyed_failures_returns_in_time_and_loses_nothing() {
    const MESSAGES: usize = 400;
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
    // What `run` may take past the shutdown timeout: its fixed margin, plus scheduling slack.
    const MARGIN: Duration = Duration::from_millis(1500);
    let memory = memory(false);
    publish_keyed(&memory, 20, MESSAGES / 20).await;
    let transport = SlowNacks {
        inner: memory.clone(),
        nack_delay: Duration::from_millis(300),
        acks: Arc::new(AtomicUsize::new(0)),
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let counted = Arc::clone(&calls);
    let handler = move |_: Received| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(());
        async move {
            // Every third message fails; some handlers near the end outlive the shutdown
            // timeout.
            if n >= 50 && n.is_multiple_of(7) {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            if n.is_multiple_of(3) {
                return Err::<(), HandlerError>("fails".into());
            }
            Ok(())
        }
    };
    let fired = Arc::new(Mutex::new(None));
    let fired_at = Arc::clone(&fired);
    let shutdown = async move {
        for _ in 0..60 {
            rx.recv().await;
        }
        *fired_at.lock().unwrap() = Some(std::time::Instant::now());
    };
    let subscriber = TracedSubscriber::new(transport.clone(), SUBSCRIPTION, TOPIC)
        .concurrency(8)
        .shutdown_timeout(SHUTDOWN_TIMEOUT);
    let run = tokio::spawn(subscriber.run(handler, shutdown));
    let result = tokio::time::timeout(SHUTDOWN_TIMEOUT * 10, run)
        .await
        .expect("run() did not return: settling hung")
        .unwrap();
    result.unwrap();
    let fired = fired.lock().unwrap().expect("the shutdown signal fired");
    let elapsed = fired.elapsed();
    assert!(
        elapsed <= SHUTDOWN_TIMEOUT + MARGIN,
        "run() took {elapsed:?}, past the shutdown timeout {SHUTDOWN_TIMEOUT:?} and its margin"
    );
    settled(&memory).await;
    let acked = transport.acks.load(Ordering::SeqCst);
    assert_eq!(
        memory.backlog(SUBSCRIPTION).unwrap(),
        MESSAGES - acked,
        "every message not acked is back in the subscription"
    );
}

/// The memory transport, whose stream holds back every delivery after the first until that
/// first one is settled: like a Pub/Sub client whose stream had more of a key buffered when
/// the handler of its first message failed.
#[derive(Clone)]
struct BufferedAfterFirst {
    inner: MemoryTransport,
}

struct SignalOnSettle {
    inner: Box<dyn Acknowledger>,
    settled: Option<Arc<Notify>>,
}

#[async_trait::async_trait]
impl Acknowledger for SignalOnSettle {
    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        let result = self.inner.ack().await;
        if let Some(settled) = &self.settled {
            settled.notify_one();
        }
        result
    }

    async fn nack(self: Box<Self>) -> Result<(), TransportError> {
        let result = self.inner.nack().await;
        if let Some(settled) = &self.settled {
            settled.notify_one();
        }
        result
    }
}

impl Transport for BufferedAfterFirst {
    fn system(&self) -> &'static str {
        self.inner.system()
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<String, TransportError> {
        self.inner.publish(topic, message).await
    }

    async fn subscribe(&self, subscription: &str) -> Result<DeliveryStream, TransportError> {
        let settled = Arc::new(Notify::new());
        let inner = self.inner.subscribe(subscription).await?;
        let stream = futures::stream::unfold(
            (inner, settled, 0usize),
            |(mut inner, settled, n)| async move {
                let next = inner.next().await?;
                if n == 1 {
                    settled.notified().await;
                }
                let next = next.map(|delivery| {
                    let (message, attempt, acker) = delivery.into_parts();
                    let acker = SignalOnSettle {
                        inner: acker,
                        settled: (n == 0).then(|| Arc::clone(&settled)),
                    };
                    Delivery::new(message, attempt, Box::new(acker))
                });
                Some((next, (inner, settled, n + 1)))
            },
        );
        Ok(DeliveryStream::new(Box::pin(stream)))
    }
}

#[tokio::test]
async fn deliveries_of_a_failed_key_that_arrive_before_its_redelivery_wait_for_it() {
    let memory = memory(false);
    publish_keyed(&memory, 1, 5).await;
    let handled = Arc::new(Mutex::new(Vec::new()));
    let failed_once = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let record = Arc::clone(&handled);
    let handler = move |received: Received| {
        let id = received.event.id().to_owned();
        let fail = id == "k0-0" && failed_once.fetch_add(1, Ordering::SeqCst) == 0;
        if !fail {
            record.lock().unwrap().push(id);
            let _ = tx.send(());
        }
        async move {
            if fail {
                return Err::<(), HandlerError>("first delivery fails".into());
            }
            Ok(())
        }
    };
    let shutdown = async move {
        for _ in 0..5 {
            rx.recv().await;
        }
    };
    let transport = BufferedAfterFirst { inner: memory };
    tokio::time::timeout(
        Duration::from_secs(30),
        TracedSubscriber::new(transport, SUBSCRIPTION, TOPIC)
            .concurrency(8)
            .run(handler, shutdown),
    )
    .await
    .expect("the key's messages were not all handled")
    .unwrap();
    assert_eq!(
        *handled.lock().unwrap(),
        ["k0-0", "k0-1", "k0-2", "k0-3", "k0-4"],
        "a key's messages were handled out of publish order around a failure"
    );
}
