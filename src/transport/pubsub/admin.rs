//! Opt-in administration in the spirit of hyperfleet-broker's `create_topic_if_missing` /
//! `create_subscription_if_missing`. The admin clients speak REST.

use super::PubSubConfig;
use super::error::{code, transport_error};
use crate::transport::{ErrorCode, SubscriptionConfig, TransportError};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_pubsub::client::{SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::push_config::NoWrapper;
use google_cloud_pubsub::model::{DeadLetterPolicy, PushConfig, RetryPolicy};
use std::time::Duration;

/// Where a push subscription delivers, and in which shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The URL Pub/Sub `POST`s each message to.
    pub endpoint: String,
    /// `false`: the JSON envelope (the default); `true`: the body is the data, attributes and
    /// metadata are headers (`no_wrapper` with `write_metadata`).
    pub unwrapped: bool,
}

impl PushSubscription {
    /// Wrapped deliveries to `endpoint`.
    pub fn wrapped(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            unwrapped: false,
        }
    }

    /// Unwrapped deliveries, with metadata headers, to `endpoint`.
    pub fn unwrapped(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            unwrapped: true,
        }
    }
}

/// Creates topics and subscriptions when they are missing.
#[derive(Debug, Clone)]
pub struct PubSubAdmin {
    config: PubSubConfig,
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
}

impl PubSubAdmin {
    /// Connects the admin clients, failing within the connect timeout when the endpoint cannot
    /// be reached.
    pub async fn connect(config: PubSubConfig) -> Result<Self, TransportError> {
        let (topics, subscriptions) = clients(&config).await?;
        probe_with(&config, &topics).await?;
        Ok(Self {
            config,
            topics,
            subscriptions,
        })
    }

    /// Creates `topic` unless it exists.
    pub async fn create_topic_if_missing(&self, topic: &str) -> Result<(), TransportError> {
        let name = self.config.topic_name(topic);
        let created = self.topics.create_topic().set_name(&name).send().await;
        self.ignore_exists(created.map(|_| ()), &name)
    }

    /// Creates `subscription` on `topic` unless it exists: ack deadline, message ordering, and
    /// a dead-letter policy from `config`. With a dead-letter policy it also creates the
    /// dead-letter topic and a subscription on it named like that topic (`{subscription}-dlq`
    /// with [`DeadLetterPolicy::for_subscription`](crate::transport::DeadLetterPolicy::for_subscription)):
    /// Pub/Sub discards what reaches a topic without subscriptions, so without one a dead
    /// letter would be lost.
    pub async fn create_subscription_if_missing(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        self.create_subscription_with_retry(subscription, topic, config, None)
            .await
    }

    /// As [`create_subscription_if_missing`](Self::create_subscription_if_missing), for a push
    /// subscription delivering to `push` (served by
    /// `push::PushEndpoint`, feature `push`).
    pub async fn create_push_subscription_if_missing(
        &self,
        subscription: &str,
        topic: &str,
        push: &PushSubscription,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        self.create(subscription, topic, config, None, Some(push))
            .await
    }

    /// As [`create_subscription_if_missing`](Self::create_subscription_if_missing), with a
    /// redelivery backoff between `minimum` and `maximum` (hyperfleet-broker uses 10–600 s).
    pub async fn create_subscription_with_retry(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
        retry: Option<(Duration, Duration)>,
    ) -> Result<(), TransportError> {
        self.create(subscription, topic, config, retry, None).await
    }

    async fn create(
        &self,
        subscription: &str,
        topic: &str,
        config: &SubscriptionConfig,
        retry: Option<(Duration, Duration)>,
        push: Option<&PushSubscription>,
    ) -> Result<(), TransportError> {
        config.validate()?;
        let name = self.config.subscription_name(subscription);
        let ack_deadline = i32::try_from(config.ack_deadline.as_secs()).unwrap_or(600);
        let mut request = self
            .subscriptions
            .create_subscription()
            .set_name(&name)
            .set_topic(self.config.topic_name(topic))
            .set_ack_deadline_seconds(ack_deadline)
            .set_enable_message_ordering(config.message_ordering);
        if let Some(policy) = &config.dead_letter {
            self.create_topic_if_missing(&policy.topic).await?;
            self.create_dead_letter_subscription(&policy.topic).await?;
            request = request.set_dead_letter_policy(
                DeadLetterPolicy::new()
                    .set_dead_letter_topic(self.config.topic_name(&policy.topic))
                    .set_max_delivery_attempts(
                        i32::try_from(policy.max_delivery_attempts).unwrap_or(100),
                    ),
            );
        }
        if let Some((minimum, maximum)) = retry {
            let seconds = |d: Duration| {
                google_cloud_wkt::Duration::clamp(i64::try_from(d.as_secs()).unwrap_or(600), 0)
            };
            request = request.set_retry_policy(
                RetryPolicy::new()
                    .set_minimum_backoff(seconds(minimum))
                    .set_maximum_backoff(seconds(maximum)),
            );
        }
        if let Some(push) = push {
            let mut push_config = PushConfig::new().set_push_endpoint(&push.endpoint);
            if push.unwrapped {
                push_config = push_config.set_no_wrapper(NoWrapper::new().set_write_metadata(true));
            }
            request = request.set_push_config(push_config);
        }
        let created = request.send().await;
        self.ignore_exists(created.map(|_| ()), &name)
    }

    /// The subscription that keeps a dead-letter topic's messages: named like the topic, with
    /// the default settings and no dead-letter policy of its own.
    async fn create_dead_letter_subscription(&self, topic: &str) -> Result<(), TransportError> {
        let name = self.config.subscription_name(topic);
        let created = self
            .subscriptions
            .create_subscription()
            .set_name(&name)
            .set_topic(self.config.topic_name(topic))
            .send()
            .await;
        self.ignore_exists(created.map(|_| ()), &name)
    }

    /// Deletes a subscription (a missing one is not an error).
    pub async fn delete_subscription(&self, subscription: &str) -> Result<(), TransportError> {
        let name = self.config.subscription_name(subscription);
        let deleted = self
            .subscriptions
            .delete_subscription()
            .set_subscription(&name)
            .send()
            .await;
        self.ignore_not_found(deleted, &name)
    }

    /// Deletes a topic (a missing one is not an error).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransportError> {
        let name = self.config.topic_name(topic);
        let deleted = self.topics.delete_topic().set_topic(&name).send().await;
        self.ignore_not_found(deleted, &name)
    }

    fn ignore_exists(
        &self,
        result: google_cloud_pubsub::Result<()>,
        name: &str,
    ) -> Result<(), TransportError> {
        match result {
            Err(e) if code(&e) != ErrorCode::AlreadyExists => Err(transport_error(
                e,
                &format!("create {name}"),
                self.config.endpoint(),
            )),
            _ => Ok(()),
        }
    }

    fn ignore_not_found(
        &self,
        result: google_cloud_pubsub::Result<()>,
        name: &str,
    ) -> Result<(), TransportError> {
        match result {
            Err(e) if code(&e) != ErrorCode::NotFound => Err(transport_error(
                e,
                &format!("delete {name}"),
                self.config.endpoint(),
            )),
            _ => Ok(()),
        }
    }
}

async fn clients(config: &PubSubConfig) -> Result<(TopicAdmin, SubscriptionAdmin), TransportError> {
    let retry = || {
        Aip194Strict
            .with_attempt_limit(3)
            .with_time_limit(config.connect_timeout)
    };
    let mut topics = TopicAdmin::builder()
        .with_attempt_timeout(config.connect_timeout)
        .with_retry_policy(retry());
    let mut subscriptions = SubscriptionAdmin::builder()
        .with_attempt_timeout(config.connect_timeout)
        .with_retry_policy(retry());
    if let Some(emulator) = &config.emulator_endpoint {
        let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
        topics = topics
            .with_endpoint(emulator.clone())
            .with_credentials(anonymous.clone());
        subscriptions = subscriptions
            .with_endpoint(emulator.clone())
            .with_credentials(anonymous);
    }
    let build_error = |e: google_cloud_gax::client_builder::Error| {
        TransportError::new(
            ErrorCode::Unavailable,
            format!(
                "cannot set up Pub/Sub admin clients for {}: {e}",
                config.endpoint()
            ),
        )
        .with_source(e)
    };
    Ok((
        topics.build().await.map_err(build_error)?,
        subscriptions.build().await.map_err(build_error)?,
    ))
}

/// Fails fast, naming the endpoint, when Pub/Sub cannot be reached. Any answer from the
/// service (even NOT_FOUND or PERMISSION_DENIED) proves it can.
pub(super) async fn probe(config: &PubSubConfig) -> Result<(), TransportError> {
    let (topics, _) = clients(config).await?;
    probe_with(config, &topics).await
}

async fn probe_with(config: &PubSubConfig, topics: &TopicAdmin) -> Result<(), TransportError> {
    let endpoint = config.endpoint();
    let request = topics
        .get_topic()
        .set_topic(config.topic_name("hyperfleet-tracing-connectivity-probe"))
        .with_attempt_timeout(config.connect_timeout)
        .send();
    match tokio::time::timeout(config.connect_timeout, request).await {
        Err(_) => Err(TransportError::new(
            ErrorCode::DeadlineExceeded,
            format!(
                "Pub/Sub at {endpoint} did not answer within {:?}",
                config.connect_timeout
            ),
        )),
        Ok(Err(e)) if e.status().is_none() && e.http_status_code().is_none() => Err(
            TransportError::new(code(&e), format!("cannot reach Pub/Sub at {endpoint}: {e}"))
                .with_source(e),
        ),
        Ok(_) => Ok(()),
    }
}
