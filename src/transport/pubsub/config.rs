//! Where the Pub/Sub backend connects and how it behaves.

use crate::transport::{ErrorCode, TransportError};
use std::time::Duration;

/// The Pub/Sub emulator's address, honoured the way Google's clients do.
pub const EMULATOR_HOST_VARIABLE: &str = "PUBSUB_EMULATOR_HOST";
/// The project when none is given.
pub const PROJECT_VARIABLE: &str = "GOOGLE_CLOUD_PROJECT";

/// StreamingPull streams per subscription by default.
pub const DEFAULT_STREAMS: usize = 6;

/// Settings of a [`PubSubTransport`](super::PubSubTransport) and [`PubSubAdmin`](super::PubSubAdmin).
#[derive(Debug, Clone, PartialEq)]
pub struct PubSubConfig {
    /// The Google Cloud project.
    pub project: String,
    /// A plain-text endpoint with anonymous credentials (the emulator), e.g.
    /// `http://127.0.0.1:8085`; `None` is Google's service with application default credentials.
    pub emulator_endpoint: Option<String>,
    /// How long connecting may take before it fails with an error naming the endpoint.
    pub connect_timeout: Duration,
    /// How long one publish may keep retrying before it fails.
    pub publish_timeout: Duration,
    /// StreamingPull streams per subscription, merged into one delivery stream. The service
    /// serves each stream at its own pace (Google's emulator: at most 100 messages every
    /// 50 ms, about 2,000 a second), so one stream caps a subscriber's throughput; Google's
    /// Node.js client opens five by default.
    pub streams: usize,
    /// Flow control: most messages handed out and not yet settled, over all the streams.
    pub max_outstanding_messages: i64,
    /// Flow control: most bytes handed out and not yet settled, over all the streams.
    pub max_outstanding_bytes: i64,
    /// Batching: send a batch at this many messages…
    pub batch_max_messages: u32,
    /// …or after this delay.
    pub batch_max_delay: Duration,
}

impl PubSubConfig {
    /// Google Cloud Pub/Sub in `project`, with the client library's defaults.
    pub fn new(project: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            emulator_endpoint: None,
            connect_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(60),
            streams: DEFAULT_STREAMS,
            max_outstanding_messages: 1000,
            max_outstanding_bytes: 100 * 1024 * 1024,
            batch_max_messages: 100,
            batch_max_delay: Duration::from_millis(10),
        }
    }

    /// From `GOOGLE_CLOUD_PROJECT` (unless `project` is given) and `PUBSUB_EMULATOR_HOST`.
    pub fn from_env(project: Option<&str>) -> Result<Self, TransportError> {
        let project = match project {
            Some(p) => p.to_owned(),
            None => std::env::var(PROJECT_VARIABLE).map_err(|_| {
                TransportError::new(
                    ErrorCode::InvalidArgument,
                    format!("no project: set {PROJECT_VARIABLE} or pass one"),
                )
            })?,
        };
        let mut config = Self::new(project);
        if let Ok(host) = std::env::var(EMULATOR_HOST_VARIABLE)
            && !host.trim().is_empty()
        {
            config = config.emulator(host.trim());
        }
        Ok(config)
    }

    /// Talks to an emulator at `host:port` (or a URL) over plain text, without credentials.
    pub fn emulator(mut self, host: &str) -> Self {
        self.emulator_endpoint = Some(if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        });
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the publish timeout.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Sets how many StreamingPull streams a subscription opens (at least 1).
    pub fn streams(mut self, streams: usize) -> Self {
        self.streams = streams.max(1);
        self
    }

    /// Flow control of one of the [`streams`](Self::streams): the totals shared out, at
    /// least one message and one byte each.
    pub(super) fn per_stream_flow_control(&self) -> (i64, i64) {
        let streams = i64::try_from(self.streams.max(1)).unwrap_or(i64::MAX);
        let share = |total: i64| (total.saturating_add(streams - 1) / streams).max(1);
        (
            share(self.max_outstanding_messages),
            share(self.max_outstanding_bytes),
        )
    }

    /// Sets flow control.
    pub fn flow_control(mut self, max_messages: i64, max_bytes: i64) -> Self {
        self.max_outstanding_messages = max_messages;
        self.max_outstanding_bytes = max_bytes;
        self
    }

    /// Sets batching.
    pub fn batching(mut self, max_messages: u32, max_delay: Duration) -> Self {
        self.batch_max_messages = max_messages;
        self.batch_max_delay = max_delay;
        self
    }

    /// `projects/{project}/topics/{topic}`, unless `topic` is already a full name.
    pub fn topic_name(&self, topic: &str) -> String {
        self.full_name(topic, "topics")
    }

    /// `projects/{project}/subscriptions/{subscription}`, unless already a full name.
    pub fn subscription_name(&self, subscription: &str) -> String {
        self.full_name(subscription, "subscriptions")
    }

    fn full_name(&self, id: &str, kind: &str) -> String {
        if id.starts_with("projects/") {
            id.to_owned()
        } else {
            format!("projects/{}/{kind}/{id}", self.project)
        }
    }

    /// What this configuration talks to, for a user to read: `the Pub/Sub emulator at …` or
    /// `Google Cloud Pub/Sub at …, project …`.
    pub fn describe(&self) -> String {
        match &self.emulator_endpoint {
            Some(endpoint) => format!(
                "the Pub/Sub emulator at {endpoint}, project {}",
                self.project
            ),
            None => format!(
                "Google Cloud Pub/Sub at {}, project {}",
                self.endpoint(),
                self.project
            ),
        }
    }

    /// The endpoint as reported in errors and in `server.address`'s source.
    pub fn endpoint(&self) -> &str {
        self.emulator_endpoint
            .as_deref()
            .unwrap_or("https://pubsub.googleapis.com")
    }

    /// The endpoint's host (`server.address`).
    pub fn server_address(&self) -> String {
        self.host_and_port().0.to_owned()
    }

    /// The endpoint's port (`server.port`): the one it names, else its scheme's (443 for
    /// `https`, 80 for `http`).
    pub fn server_port(&self) -> Option<u16> {
        let (_, port) = self.host_and_port();
        port.or_else(|| match self.endpoint().split_once("://") {
            Some(("https", _)) => Some(443),
            Some(("http", _)) => Some(80),
            _ => None,
        })
    }

    fn host_and_port(&self) -> (&str, Option<u16>) {
        let endpoint = self.endpoint();
        let host_port = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest);
        let host_port = host_port.split('/').next().unwrap_or(host_port);
        match host_port.rsplit_once(':') {
            Some((host, port)) => match port.parse() {
                Ok(port) => (host, Some(port)),
                Err(_) => (host_port, None),
            },
            None => (host_port, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PubSubConfig;

    #[test]
    fn the_server_is_the_endpoints_host_and_port() {
        let google = PubSubConfig::new("p");
        assert_eq!(
            (google.server_address(), google.server_port()),
            ("pubsub.googleapis.com".to_owned(), Some(443))
        );
        let emulator = PubSubConfig::new("p").emulator("localhost:8085");
        assert_eq!(
            (emulator.server_address(), emulator.server_port()),
            ("localhost".to_owned(), Some(8085))
        );
    }
}
