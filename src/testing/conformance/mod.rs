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

/// A backend under test: its transport and how to create what the checks need.
pub trait ConformanceTarget: Send + Sync {
    /// The transport type.
    type Transport: Transport + Clone;

    /// A transport handle (clones share topics and subscriptions).
    fn transport(&self) -> Self::Transport;

    /// Creates a topic.
    fn create_topic(&self, topic: &str) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Creates a subscription on `topic`.
    fn create_subscription(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
}

impl ConformanceTarget for crate::transport::memory::MemoryTransport {
    type Transport = Self;

    fn transport(&self) -> Self {
        self.clone()
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

/// The outcome of one named check.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The check's name.
    pub name: &'static str,
    /// `Err` says what was wrong.
    pub outcome: Result<(), String>,
    /// How long the check took.
    pub elapsed: std::time::Duration,
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One result per check, in run order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Whether every check passed (and at least one ran).
    pub fn passed(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(|r| r.outcome.is_ok())
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.results.iter().filter(|r| r.outcome.is_err()).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            match &result.outcome {
                Ok(()) => writeln!(f, "ok   {} ({:.1?})", result.name, result.elapsed)?,
                Err(why) => writeln!(f, "FAIL {} ({:.1?}): {why}", result.name, result.elapsed)?,
            }
        }
        let failed = self.failures().len();
        write!(f, "{} passed, {failed} failed", self.results.len() - failed)
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

/// Runs the check called `name`.
pub async fn run_case<T: ConformanceTarget>(target: &T, name: &str) -> CaseResult {
    let started = std::time::Instant::now();
    let (name, outcome) = match cases::ALL.iter().find(|(n, _)| *n == name) {
        Some((name, case)) => (*name, cases::dispatch(*case, target).await),
        None => (
            "unknown",
            Err(format!("no conformance check is called {name:?}")),
        ),
    };
    CaseResult {
        name,
        outcome,
        elapsed: started.elapsed(),
    }
}
