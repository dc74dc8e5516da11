//! What every check needs: fresh names, a publisher and subscribers on one telemetry fixture,
//! and a way to consume until the handler has run a given number of times.

use super::ConformanceTarget;
use crate::consume::Handler;
use crate::testing::{TestMetrics, TestTelemetry};
use crate::transport::SubscriptionConfig;
use crate::{HandlerError, Received, Settings};
use crate::{TracedPublisher, TracedSubscriber};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::SpanData;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for anything the transport does.
const WAIT: Duration = Duration::from_secs(60);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// What the handler saw on one call.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) received: Received,
    /// `Context::current()`'s span inside the handler.
    pub(super) current: SpanContext,
}

pub(super) struct Harness<'t, T: ConformanceTarget> {
    pub(super) target: &'t T,
    pub(super) telemetry: TestTelemetry,
    /// What the case's publishers and subscribers measured.
    pub(super) metrics: TestMetrics,
    pub(super) topic: String,
    /// Subscriptions created to be read by pull on any target.
    pull_only: Mutex<HashSet<String>>,
}

/// How a check consumes a subscription: the pull loop, or, on a push target, a push endpoint
/// served for the run.
pub(super) enum Way<T: ConformanceTarget> {
    Pull(TracedSubscriber<T::Transport>),
    #[cfg(feature = "push")]
    Push(push::PushRun),
}

impl<T: ConformanceTarget> Way<T> {
    pub(super) fn settings(self, settings: Settings) -> Self {
        match self {
            Self::Pull(subscriber) => Self::Pull(subscriber.settings(settings)),
            #[cfg(feature = "push")]
            Self::Push(run) => Self::Push(run.settings(settings)),
        }
    }

    pub(super) fn concurrency(self, limit: usize) -> Self {
        match self {
            Self::Pull(subscriber) => Self::Pull(subscriber.concurrency(limit)),
            #[cfg(feature = "push")]
            Self::Push(run) => Self::Push(run.concurrency(limit)),
        }
    }

    pub(super) fn shutdown_timeout(self, timeout: std::time::Duration) -> Self {
        match self {
            Self::Pull(subscriber) => Self::Pull(subscriber.shutdown_timeout(timeout)),
            #[cfg(feature = "push")]
            Self::Push(run) => Self::Push(run.shutdown_timeout(timeout)),
        }
    }

    /// Consumes with `handler` until `shutdown` completes, then shuts down gracefully.
    pub(super) async fn run<H, S>(self, handler: H, shutdown: S) -> Result<(), String>
    where
        H: Handler,
        S: Future<Output = ()> + Send + 'static,
    {
        match self {
            Self::Pull(subscriber) => subscriber
                .run(handler, shutdown)
                .await
                .map_err(|e| e.to_string()),
            #[cfg(feature = "push")]
            Self::Push(run) => run.run(handler, shutdown).await,
        }
    }
}

#[cfg(feature = "push")]
mod push {
    use super::super::PushRoutes;
    use crate::Settings;
    use crate::consume::Handler;
    use crate::push::PushEndpoint;
    use std::future::Future;
    use std::sync::Arc;

    /// A push endpoint for one run, its subscription's deliveries routed to it meanwhile.
    pub(in super::super) struct PushRun {
        pub(super) endpoint: PushEndpoint,
        pub(super) subscription: String,
        pub(super) routes: Arc<dyn PushRoutes>,
    }

    /// Unroutes the subscription from this run's endpoint when dropped: when shutdown starts,
    /// or when the run is dropped.
    struct Routed {
        routes: Arc<dyn PushRoutes>,
        subscription: String,
        url: String,
    }

    impl Drop for Routed {
        fn drop(&mut self) {
            self.routes.unroute(&self.subscription, &self.url);
        }
    }

    impl PushRun {
        pub(in super::super) fn settings(mut self, settings: Settings) -> Self {
            self.endpoint = self.endpoint.settings(settings);
            self
        }

        pub(in super::super) fn concurrency(mut self, limit: usize) -> Self {
            self.endpoint = self.endpoint.concurrency(limit);
            self
        }

        pub(in super::super) fn shutdown_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.endpoint = self.endpoint.shutdown_timeout(timeout);
            self
        }

        /// Serves the endpoint on a loopback port until `shutdown`; the subscription's
        /// deliveries are routed to it until shutdown starts.
        pub(in super::super) async fn run<H, S>(self, handler: H, shutdown: S) -> Result<(), String>
        where
            H: Handler,
            S: Future<Output = ()> + Send + 'static,
        {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot listen for pushes: {e}"))?;
            let address = listener
                .local_addr()
                .map_err(|e| format!("cannot listen for pushes: {e}"))?;
            let url = format!("http://{address}/");
            self.routes.route(&self.subscription, &url);
            let routed = Arc::new(Routed {
                routes: self.routes,
                subscription: self.subscription,
                url,
            });
            // Unrouted when shutdown starts (the shutdown future's copy) or when this run is
            // dropped (this one's): whichever is last.
            let in_shutdown = Arc::clone(&routed);
            let shutdown = async move {
                shutdown.await;
                drop(in_shutdown);
            };
            let served = self.endpoint.serve(listener, handler, shutdown).await;
            drop(routed);
            served.map_err(|e| format!("the push endpoint failed: {e}"))
        }
    }
}

impl<'t, T: ConformanceTarget> Harness<'t, T> {
    /// A fresh topic for `case`.
    pub(super) async fn new(target: &'t T, case: &str) -> Result<Self, String> {
        let topic = unique_name(case);
        target
            .create_topic(&topic)
            .await
            .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
        Ok(Self {
            target,
            telemetry: TestTelemetry::new(),
            metrics: TestMetrics::new(),
            topic,
            pull_only: Mutex::default(),
        })
    }

    /// A fresh subscription on the case's topic.
    pub(super) async fn subscription(
        &self,
        suffix: &str,
        config: SubscriptionConfig,
    ) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.topic);
        if let Some(policy) = &config.dead_letter {
            self.target
                .create_topic(&policy.topic)
                .await
                .map_err(|e| format!("cannot create dead-letter topic {}: {e}", policy.topic))?;
        }
        self.target
            .create_subscription(&name, &self.topic, &config)
            .await
            .map_err(|e| format!("cannot create subscription {name}: {e}"))?;
        Ok(name)
    }

    /// The case's settings: its telemetry fixture and metrics.
    pub(super) fn settings(&self) -> Settings {
        Settings::new()
            .tracer_provider(&self.telemetry.provider)
            .metrics(self.metrics.metrics.clone())
    }

    /// A fresh subscription whose messages are dead-lettered after 5 attempts to the topic
    /// `{topic}-dlq`, and a subscription on that topic: their names.
    pub(super) async fn dead_lettering_subscription(&self) -> Result<(String, String), String> {
        let dead_letter_topic = format!("{}-dlq", self.topic);
        let policy = crate::transport::DeadLetterPolicy::new(&dead_letter_topic, 5);
        let sub = self
            .subscription("a", SubscriptionConfig::default().dead_letter(policy))
            .await?;
        let dead_letters = format!("{dead_letter_topic}-sub");
        crate::sync::lock(&self.pull_only).insert(dead_letters.clone());
        self.target
            .create_pull_subscription(
                &dead_letters,
                &dead_letter_topic,
                &SubscriptionConfig::default(),
            )
            .await
            .map_err(|e| format!("cannot create subscription {dead_letters}: {e}"))?;
        Ok((sub, dead_letters))
    }

    pub(super) fn publisher(&self) -> TracedPublisher<T::Transport> {
        TracedPublisher::new(self.target.transport(), self.topic.clone()).settings(self.settings())
    }

    /// How the checks consume `subscription`: by push on a push target (but for the
    /// subscriptions created to be pulled), else by the pull loop.
    pub(super) fn subscriber(&self, subscription: &str) -> Way<T> {
        #[cfg(feature = "push")]
        if let Some(routes) = self.push_routes(subscription) {
            let endpoint = crate::push::PushEndpoint::new(subscription, self.topic.clone())
                .settings(self.settings());
            return Way::Push(push::PushRun {
                endpoint,
                subscription: subscription.to_owned(),
                routes,
            });
        }
        Way::Pull(
            TracedSubscriber::new(self.target.transport(), subscription, self.topic.clone())
                .settings(self.settings()),
        )
    }

    /// Whether `subscription` is consumed by push.
    pub(super) fn is_push(&self, subscription: &str) -> bool {
        #[cfg(feature = "push")]
        return self.push_routes(subscription).is_some();
        #[cfg(not(feature = "push"))]
        {
            let _ = subscription;
            false
        }
    }

    #[cfg(feature = "push")]
    fn push_routes(&self, subscription: &str) -> Option<Arc<dyn super::PushRoutes>> {
        match crate::sync::lock(&self.pull_only).contains(subscription) {
            true => None,
            false => self.target.push_routes(),
        }
    }

    /// Publishes the reconcile event of `cluster` (id `event-{cluster}`) under `parent`.
    pub(super) async fn publish_under(
        &self,
        parent: &Context,
        cluster: &str,
    ) -> Result<crate::Published, String> {
        let event = crate::testing::reconcile_event(&format!("event-{cluster}"), cluster)
            .map_err(|e| format!("cannot build the test event: {e}"))?;
        self.publisher()
            .publish_with(event, crate::PublishOptions::new().parent(parent.clone()))
            .await
            .map_err(|e| e.to_string())
    }

    /// A sampled root span's context, the parent a test publishes under.
    pub(super) fn root(&self) -> Context {
        let tracer = self.telemetry.provider.tracer("conformance");
        Context::new().with_span(tracer.start("conformance.root"))
    }

    pub(super) fn spans(&self) -> Vec<SpanData> {
        self.telemetry.spans()
    }

    /// Runs `subscriber` until its handler has been called `calls` times, then shuts it down
    /// gracefully (so every span of those calls has ended). `behaviour` decides each call's
    /// result from its index; it may panic.
    pub(super) async fn consume<B>(
        &self,
        subscriber: Way<T>,
        calls: usize,
        behaviour: B,
    ) -> Result<Vec<Seen>, String>
    where
        B: Fn(usize, &Received) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let count = AtomicUsize::new(0);
        let record = Arc::clone(&seen);
        let handler = move |received: Received| {
            let index = count.fetch_add(1, Ordering::SeqCst);
            let current = Context::current().span().span_context().clone();
            crate::sync::lock(&record).push(Seen {
                received: received.clone(),
                current,
            });
            let _ = tx.send(());
            let result = behaviour(index, &received);
            async move { result }
        };
        let enough = async move {
            for _ in 0..calls {
                if rx.recv().await.is_none() {
                    return;
                }
            }
        };
        match tokio::time::timeout(WAIT, subscriber.run(handler, enough)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("subscriber failed: {e}")),
            Err(_) => {
                let got = crate::sync::lock(&seen).len();
                return Err(format!(
                    "timed out after {WAIT:?} waiting for {calls} handler calls (got {got})"
                ));
            }
        }
        let seen = crate::sync::lock(&seen).clone();
        Ok(seen)
    }
}

fn unique_name(case: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "hft-{}-{}-{}-{nanos}",
        case.replace('_', "-"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
