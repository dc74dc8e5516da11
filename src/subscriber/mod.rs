//! Traced receiving: the pull loop over a subscription, which schedules deliveries through the
//! [consume pipeline](crate::consume) and settles them with the transport.

mod dispatch;

use crate::settings::Execution;

use crate::consume::{Consumer, ConsumerConfig, Handler};
use crate::transport::{DeliveryStream, Transport, TransportError};
use dispatch::Dispatcher;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Most deliveries held back behind busy ordering keys before the loop stops pulling.
const MAX_WAITING: usize = 1000;
/// How long shutdown waits for handlers in flight by default: inside Kubernetes' default
/// 30-second termination grace period.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// What shutdown may take past its timeout: for aborted handlers to drop their deliveries,
/// for the nacks of what they left to be sent, and for the transport to flush settlements.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(1);
/// Handlers running at once by default.
const DEFAULT_CONCURRENCY: usize = 16;

/// Why a subscriber loop stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The subscription could not be opened.
    #[error("cannot subscribe to {subscription}: {source}")]
    Subscribe {
        /// The subscription.
        subscription: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The delivery stream failed and the transport could not recover.
    #[error("the delivery stream of {subscription} failed: {source}")]
    Stream {
        /// The subscription.
        subscription: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
}

/// Runs a handler over a subscription, each event inside the standard's spans.
///
/// For each delivery: decode the event, extract its creation context, start a CONSUMER span
/// `{topic} receive` (a child of that context by default, see
/// [`ParentMode`](crate::settings::ParentMode)), then the process
/// span (`adapter.process` by default, INTERNAL) as its child, and run the handler inside the
/// process span's context, so the handler's own spans and outgoing calls are its children.
/// `Ok` acks; an error or a panic is recorded (status Error, `error.type`) and nacked (see
/// [`AckPolicy`](crate::settings::AckPolicy)); a message that cannot be decoded is recorded and nacked so a dead-letter
/// policy can take it. Up to [`concurrency`](Self::concurrency) handlers run at once, but
/// deliveries sharing an ordering key are handled one after another, in delivery order.
///
/// ```
/// use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
/// use hyperfleet_tracing::transport::memory::MemoryTransport;
/// use hyperfleet_tracing::transport::SubscriptionConfig;
/// use hyperfleet_tracing::{HandlerError, Received, Settings, TracedPublisher, TracedSubscriber};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let transport = MemoryTransport::new();
/// transport.create_topic("hyperfleet-clusters")?;
/// transport.create_subscription("validation", "hyperfleet-clusters", SubscriptionConfig::default())?;
///
/// let event = EventBuilderV10::new()
///     .id("1").source("hyperfleet-sentinel").ty("com.redhat.hyperfleet.cluster.reconcile")
///     .build()?;
/// TracedPublisher::new(transport.clone(), "hyperfleet-clusters").publish(event).await?;
///
/// let (done, stop) = tokio::sync::oneshot::channel::<()>();
/// let done = std::sync::Mutex::new(Some(done));
/// let subscriber = TracedSubscriber::new(transport, "validation", "hyperfleet-clusters")
///     .settings(Settings::new().adapter("validation"));
/// subscriber
///     .run(
///         move |received: Received| {
///             let done = done.lock().unwrap().take();
///             async move {
///                 assert_eq!(received.event.source().to_string(), "hyperfleet-sentinel");
///                 done.map(|d| d.send(()));
///                 Ok::<(), HandlerError>(())
///             }
///         },
///         async move { let _ = stop.await; },
///     )
///     .await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TracedSubscriber<T> {
    transport: Arc<T>,
    config: ConsumerConfig,
    concurrency: usize,
    execution: Execution,
    shutdown_timeout: Duration,
}

impl<T: Transport> TracedSubscriber<T> {
    /// A subscriber on `subscription`, whose messages come from `topic` (named in the spans).
    ///
    /// Defaults: [`Settings::new`](crate::Settings::new), 16 concurrent handlers, a task per
    /// handler, a 25-second shutdown timeout.
    pub fn new(transport: T, subscription: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            transport: Arc::new(transport),
            config: ConsumerConfig::new(subscription.into(), topic.into()),
            concurrency: DEFAULT_CONCURRENCY,
            execution: Execution::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Uses `settings` (tracer provider, propagator, conventions, metrics, adapter, parent
    /// mode, ack policy, hooks) instead of the defaults.
    pub fn settings(mut self, settings: crate::Settings) -> Self {
        self.config.settings = settings;
        self
    }

    /// Sets how many handlers may run at once (at least 1).
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// Sets where handlers run (default [`Execution::Auto`]: a task per handler on a
    /// multi-threaded runtime, the loop's task on a current-thread one).
    pub fn execution(mut self, execution: Execution) -> Self {
        self.execution = execution;
        self
    }

    /// Sets how long shutdown waits for the handlers in flight (default 25 s). Handlers still
    /// running then are aborted and their messages nacked, so Pub/Sub redelivers them.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Handles deliveries until `shutdown` completes, then stops pulling, waits for the
    /// handlers in flight to finish and settle, and returns.
    ///
    /// Handlers still running after the [shutdown timeout](Self::shutdown_timeout) are aborted
    /// and their messages nacked; `run` returns within the shutdown timeout plus one second,
    /// whatever the handlers and the transport do. A handler that blocks its thread in
    /// synchronous code cannot be aborted: it is left running, and its message, never
    /// settled, is delivered again when its lease ends (on the loop's task, as on a
    /// current-thread runtime, it blocks the loop too, and `run` returns once it does). A handler that runs past the
    /// subscription's ack deadline keeps its message: the transport extends the lease (the
    /// Pub/Sub client, and the memory transport likewise) up to its maximum lease, an hour by
    /// default. A handler that runs longer than that sees its message delivered again, and its
    /// late ack is ignored. Either way delivery is at least once: handlers must be idempotent.
    pub async fn run<H, S>(self, handler: H, shutdown: S) -> Result<(), SubscribeError>
    where
        H: Handler,
        S: Future<Output = ()> + Send,
    {
        let subscription = self.config.subscription.clone();
        let mut deliveries = self
            .transport
            .subscribe(&subscription)
            .await
            .map_err(|source| SubscribeError::Subscribe {
                subscription: subscription.clone(),
                source,
            })?;
        let mut config = self.config;
        config.current_name = self
            .transport
            .destination_name(&config.topic, Some(&subscription));
        let consumer = Consumer::new(
            config,
            self.transport.system(),
            self.transport.server_address(),
            self.transport.server_port(),
        );
        let mut dispatcher = Dispatcher::new(Arc::new(consumer), Arc::new(handler), self.execution);
        let outcome = pull(
            &mut dispatcher,
            &mut deliveries,
            shutdown,
            self.concurrency,
            &subscription,
        )
        .await;
        // Stop pulling; let the last handlers finish and settle, and the transport flush those
        // settlements, all within the shutdown timeout and its fixed margin.
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let finish = async {
            if tokio::time::timeout_at(deadline, dispatcher.drain())
                .await
                .is_err()
            {
                dispatcher.abandon(deadline + SHUTDOWN_MARGIN / 2).await;
            }
            dispatcher.flush(deadline + SHUTDOWN_MARGIN).await;
        };
        let close = tokio::time::timeout_at(deadline + SHUTDOWN_MARGIN, deliveries.close());
        let _ = futures::join!(close, finish);
        outcome
    }
}

/// Hands deliveries to the dispatcher, at most `concurrency` handlers at once, until
/// `shutdown` completes or the stream ends.
async fn pull<H: Handler>(
    dispatcher: &mut Dispatcher<H>,
    deliveries: &mut DeliveryStream,
    shutdown: impl Future<Output = ()>,
    concurrency: usize,
    subscription: &str,
) -> Result<(), SubscribeError> {
    tokio::pin!(shutdown);
    loop {
        let running = dispatcher.running();
        if running >= concurrency || (running > 0 && dispatcher.waiting() >= MAX_WAITING) {
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                _ = dispatcher.complete_one() => continue,
            }
        }
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            true = dispatcher.complete_one(), if dispatcher.running() > 0 => {}
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => dispatcher.submit(delivery),
                Some(Err(source)) => return Err(SubscribeError::Stream {
                    subscription: subscription.to_owned(),
                    source,
                }),
                None => return Ok(()),
            },
        }
    }
}
