//! The conformance suite: the same named checks against any [`Transport`].
//!
//! A backend proves it carries traces the way the standard asks by implementing
//! [`ConformanceTarget`] (how to create topics and subscriptions) and running [`run`]:
//!
//! ```no_run
//! use hyperfleet_tracing::testing::conformance;
//! use hyperfleet_tracing::transport::memory::MemoryTransport;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
//! let report = conformance::run(&MemoryTransport::new()).await;
//! assert!(report.passed(), "{report}");
//! # });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cases;
mod harness;

use crate::transport::{SubscriptionConfig, Transport, TransportError};
use std::fmt;
use std::future::Future;

/// Something a backend may offer; a check that needs what the backend lacks is reported as
/// not applicable, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// Deliveries that share an ordering key arrive in publish order.
    OrderingKeys,
    /// Each delivery says which attempt it is (Pub/Sub: on subscriptions with a dead-letter
    /// policy).
    DeliveryAttempts,
    /// A subscription sends what failed too many times to a dead-letter topic.
    DeadLetters,
    /// A delivery held past its ack deadline keeps its lease.
    LeaseExtension,
}

impl Capability {
    /// Everything Pub/Sub offers, and the memory transport with it.
    pub const ALL: &'static [Capability] = &[
        Self::OrderingKeys,
        Self::DeliveryAttempts,
        Self::DeadLetters,
        Self::LeaseExtension,
    ];
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OrderingKeys => "ordering keys",
            Self::DeliveryAttempts => "delivery attempts",
            Self::DeadLetters => "dead letters",
            Self::LeaseExtension => "lease extension",
        })
    }
}

/// A backend under test: its transport, what it offers, and how to create what the checks
/// need.
pub trait ConformanceTarget: Send + Sync {
    /// The transport type.
    type Transport: Transport + Clone;

    /// A transport handle (clones share topics and subscriptions).
    fn transport(&self) -> Self::Transport;

    /// What the backend offers; checks that need anything else are not applicable.
    fn capabilities(&self) -> &[Capability];

    /// Creates a topic.
    fn create_topic(&self, topic: &str) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Creates a subscription on `topic`: the one the checks consume from, by pull or, on a
    /// target with [`push_routes`](Self::push_routes), by push to those routes.
    fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Creates a subscription the checks read through the transport's own `subscribe` (a
    /// dead-letter topic's): by default [`create_subscription`](Self::create_subscription);
    /// a push target creates a pull subscription here.
    fn create_pull_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.create_subscription(subscription, topic, config)
    }

    /// A push target's routes: `None` (the default) and the checks pull; otherwise each run
    /// serves a [`PushEndpoint`](crate::push::PushEndpoint) on a loopback port and routes
    /// its subscription's push deliveries there.
    #[cfg(feature = "push")]
    fn push_routes(&self) -> Option<std::sync::Arc<dyn PushRoutes>> {
        None
    }
}

/// Where a push target's subscriptions deliver: the target creates push subscriptions to
/// an address of its own, and forwards each delivery to the endpoint routed for its
/// subscription.
#[cfg(feature = "push")]
pub trait PushRoutes: Send + Sync {
    /// Forwards `subscription`'s deliveries to `url` from now on.
    fn route(&self, subscription: &str, url: &str);
    /// Stops forwarding them to `url` (a later route of the subscription stays); a delivery
    /// then waits for the next route, or fails.
    fn unroute(&self, subscription: &str, url: &str);
}

impl ConformanceTarget for crate::transport::memory::MemoryTransport {
    type Transport = Self;

    fn transport(&self) -> Self {
        self.clone()
    }

    fn capabilities(&self) -> &[Capability] {
        Capability::ALL
    }

    async fn create_topic(&self, topic: &str) -> Result<(), TransportError> {
        crate::transport::memory::MemoryTransport::create_topic(self, topic)
    }

    async fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        crate::transport::memory::MemoryTransport::create_subscription(
            self,
            subscription,
            topic,
            config.clone(),
        )
    }
}

/// A target that offers fewer capabilities than its backend: for a backend whose
/// capabilities depend on how it is set up (a queue type, a subscription option), or to see
/// which checks rely on what.
#[derive(Debug, Clone)]
pub struct WithCapabilities<T> {
    target: T,
    capabilities: Vec<Capability>,
}

impl<T: ConformanceTarget> WithCapabilities<T> {
    /// `target`, offering only those of `capabilities` that it offers itself.
    pub fn new(target: T, capabilities: &[Capability]) -> Self {
        let capabilities = capabilities
            .iter()
            .copied()
            .filter(|c| target.capabilities().contains(c))
            .collect();
        Self {
            target,
            capabilities,
        }
    }
}

impl<T: ConformanceTarget> ConformanceTarget for WithCapabilities<T> {
    type Transport = T::Transport;

    fn transport(&self) -> Self::Transport {
        self.target.transport()
    }

    fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    fn create_topic(&self, topic: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.target.create_topic(topic)
    }

    fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.target.create_subscription(subscription, topic, config)
    }

    fn create_pull_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.target
            .create_pull_subscription(subscription, topic, config)
    }

    #[cfg(feature = "push")]
    fn push_routes(&self) -> Option<std::sync::Arc<dyn PushRoutes>> {
        self.target.push_routes()
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed; what was wrong.
    Failed(String),
    /// It needs something the backend does not offer; what.
    NotApplicable(String),
}

/// The outcome of one named check.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The check's name.
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long the check took.
    pub elapsed: std::time::Duration,
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One result per check, in run order, the checks that did not apply included.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Whether no check failed and at least one passed.
    pub fn passed(&self) -> bool {
        self.results.iter().any(|r| r.outcome == Outcome::Passed) && self.failures().is_empty()
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }

    /// The checks that did not apply to the backend.
    pub fn not_applicable(&self) -> Vec<&CaseResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotApplicable(_)))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            let (name, elapsed) = (result.name, result.elapsed);
            match &result.outcome {
                Outcome::Passed => writeln!(f, "ok   {name} ({elapsed:.1?})")?,
                Outcome::Failed(why) => writeln!(f, "FAIL {name} ({elapsed:.1?}): {why}")?,
                Outcome::NotApplicable(why) => writeln!(f, "n/a  {name}: {why}")?,
            }
        }
        let (failed, skipped) = (self.failures().len(), self.not_applicable().len());
        let passed = self.results.len() - failed - skipped;
        write!(
            f,
            "{passed} passed, {failed} failed, {skipped} not applicable"
        )
    }
}

/// The names of every check, in run order.
pub fn case_names() -> Vec<&'static str> {
    cases::ALL.iter().map(|(name, _)| *name).collect()
}

/// Runs every check against `target`.
pub async fn run<T: ConformanceTarget>(target: &T) -> Report {
    let mut report = Report::default();
    for (name, _) in cases::ALL {
        report.results.push(run_case(target, name).await);
    }
    report
}

/// Runs the check called `name`, unless it needs what `target` does not offer.
pub async fn run_case<T: ConformanceTarget>(target: &T, name: &str) -> CaseResult {
    let started = std::time::Instant::now();
    let Some((name, needs)) = cases::ALL.iter().find(|(n, _)| *n == name) else {
        return CaseResult {
            name: "unknown",
            outcome: Outcome::Failed(format!("no conformance check is called {name:?}")),
            elapsed: started.elapsed(),
        };
    };
    let missing: Vec<String> = needs
        .iter()
        .filter(|need| !target.capabilities().contains(need))
        .map(ToString::to_string)
        .collect();
    let outcome = if !missing.is_empty() {
        Outcome::NotApplicable(format!("the backend offers no {}", missing.join(", no ")))
    } else {
        match cases::run(name, target).await {
            Some(Ok(())) => Outcome::Passed,
            Some(Err(why)) => Outcome::Failed(why),
            None => Outcome::Failed(format!("the check {name:?} is not registered")),
        }
    };
    CaseResult {
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}
