//! How to reach RabbitMQ and how topics map onto it, as hyperfleet-broker reads it.

use crate::transport::{ErrorCode, TransportError};

/// The variable naming the broker URL, as hyperfleet-broker reads it.
pub const BROKER_RABBITMQ_URL: &str = "BROKER_RABBITMQ_URL";

/// How a topic's exchange routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExchangeType {
    /// Every bound queue gets every message (hyperfleet-broker's default).
    #[default]
    Fanout,
    /// By routing-key pattern.
    Topic,
    /// By exact routing key.
    Direct,
}

/// What publishing does with a message no queue takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unroutable {
    /// A typed error (`FAILED_PRECONDITION`): nothing is silently lost.
    #[default]
    Error,
    /// Accept it, as Pub/Sub accepts a message for a topic without subscriptions.
    Accept,
}

/// The default prefetch: see [`RabbitMqConfig::prefetch`](RabbitMqConfig#structfield.prefetch).
const DEFAULT_PREFETCH: u16 = 32;

/// Settings of a [`RabbitMqTransport`](super::RabbitMqTransport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitMqConfig {
    /// `amqp://user:password@host:port/vhost`; for a cluster, the URL of each node,
    /// comma-separated, tried in turn when connecting and again whenever the connection is
    /// lost (credentials, virtual host and parameters are the first URL's). One address in
    /// front of the cluster (a load balancer, a Kubernetes Service) works as well.
    pub url: String,
    /// The type of the exchanges the admin declares (default fanout).
    pub exchange_type: ExchangeType,
    /// The routing key messages are published with and queues bound with (default empty).
    pub routing_key: String,
    /// Unacknowledged deliveries per consumer: the flow control (default 32, twice the
    /// subscriber's default concurrency: every handler busy and as many deliveries at hand,
    /// so that a handler that finishes does not wait a round trip to the broker for its next
    /// one). Lower it where competing consumers should share slow work evenly, or messages
    /// are large: each consumer holds up to this many.
    pub prefetch: u16,
    /// What to do with an unroutable message.
    pub unroutable: Unroutable,
    /// Longest wait for the broker's confirm of one publish (default 10 s).
    pub publish_timeout: std::time::Duration,
    /// Delayed, bounded retries of failed deliveries, then `{queue}-dlq` (default off: a
    /// failed delivery is nacked with requeue, as hyperfleet-broker does).
    pub retry: Option<super::Retry>,
}

impl RabbitMqConfig {
    /// Settings for the broker at `url`, with hyperfleet-broker's topology.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange_type: ExchangeType::Fanout,
            routing_key: String::new(),
            prefetch: DEFAULT_PREFETCH,
            unroutable: Unroutable::Error,
            publish_timeout: std::time::Duration::from_secs(10),
            retry: None,
        }
    }

    /// Settings from `BROKER_RABBITMQ_URL`: one URL, or a comma-separated URL per node.
    pub fn from_env() -> Result<Self, TransportError> {
        let url = std::env::var(BROKER_RABBITMQ_URL).unwrap_or_default();
        let amqp = |one: &str| one.starts_with("amqp://") || one.starts_with("amqps://");
        if split_urls(&url).next().is_none() || !split_urls(&url).all(amqp) {
            return Err(TransportError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{BROKER_RABBITMQ_URL} must be an amqp:// or amqps:// URL, or several \
                     comma-separated"
                ),
            ));
        }
        Ok(Self::new(url))
    }

    /// Sets the exchange type.
    pub fn exchange_type(mut self, kind: ExchangeType) -> Self {
        self.exchange_type = kind;
        self
    }

    /// Sets the routing key.
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = key.into();
        self
    }

    /// Sets the prefetch count (at least 1).
    pub fn prefetch(mut self, count: u16) -> Self {
        self.prefetch = count.max(1);
        self
    }

    /// Sets the longest wait for a publish's confirm.
    pub fn publish_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Retries failed deliveries with a growing delay, at most `retry.max_attempts` deliveries
    /// in all, then moves them to `{queue}-dlq`, on classic queues too (see [`Retry`]). The
    /// subscriber declares the wait queues and the dead-letter queue when it starts consuming.
    /// Every nack then counts as a failed attempt, a `Delivery::nack` of a message never
    /// handled included.
    /// Retried messages come back with RabbitMQ's `x-death` header, which Go consumers refuse
    /// (every header they read must be a string): turn this on only for queues whose consumers
    /// are all this crate's.
    ///
    /// [`Retry`]: super::Retry
    pub fn retry(mut self, retry: super::Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets what happens to an unroutable message.
    pub fn unroutable(mut self, policy: Unroutable) -> Self {
        self.unroutable = policy;
        self
    }

    /// `host:port` of each node, comma-separated, without credentials, for messages.
    pub fn describe(&self) -> String {
        let nodes: Vec<&str> = split_urls(&self.url)
            .map(|url| {
                let rest = url.split_once("://").map_or(url, |(_, r)| r);
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                host.split('/').next().unwrap_or(host)
            })
            .collect();
        nodes.join(",")
    }

    /// The queue of `subscription` on `topic`: `{topic}-{subscription}`, as hyperfleet-broker
    /// names it.
    pub fn queue_name(topic: &str, subscription: &str) -> String {
        format!("{topic}-{subscription}")
    }
}

/// The URLs of a comma-separated list, trimmed, empty entries skipped.
pub(super) fn split_urls(url: &str) -> impl Iterator<Item = &str> {
    url.split(',').map(str::trim).filter(|one| !one.is_empty())
}

/// `messaging.destination.name` as the messaging conventions name a RabbitMQ destination:
/// `{exchange}:{routing key}` when publishing, `{exchange}:{routing key}:{queue}` when
/// consuming, empty parts left out, the routing key once when it equals the queue, and
/// `amq.default` for the default exchange with no routing key.
pub(super) fn destination_name(exchange: &str, routing_key: &str, queue: Option<&str>) -> String {
    let queue = queue.filter(|queue| *queue != routing_key);
    let parts: Vec<&str> = [Some(exchange), Some(routing_key), queue]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .collect();
    match parts.is_empty() {
        true => "amq.default".to_owned(),
        false => parts.join(":"),
    }
}

#[cfg(test)]
mod tests {
    use super::destination_name;

    #[test]
    fn the_destination_is_named_as_the_conventions_say() {
        assert_eq!(destination_name("logs", "", None), "logs");
        assert_eq!(
            destination_name("direct_logs", "warning", None),
            "direct_logs:warning"
        );
        assert_eq!(destination_name("", "", None), "amq.default");
        assert_eq!(destination_name("", "jobs", None), "jobs");
        assert_eq!(
            destination_name("direct_logs", "warning", Some("my_queue")),
            "direct_logs:warning:my_queue"
        );
        assert_eq!(
            destination_name("clusters", "", Some("clusters-v")),
            "clusters:clusters-v"
        );
        assert_eq!(destination_name("ex", "jobs", Some("jobs")), "ex:jobs");
        assert_eq!(destination_name("", "", Some("q")), "q");
    }
}
