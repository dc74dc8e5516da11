//! The labels of one publisher or subscription: the same for each of its messages.

use crate::span::Destination;
use crate::span::attributes::{
    MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION_SUBSCRIPTION_NAME, MESSAGING_SYSTEM,
    SERVER_ADDRESS,
};
use crate::span::conventions::Operation;

use super::names;

/// Where a pipeline's messages go or come from, and who measures them.
pub(crate) struct SiteLabels {
    topic: String,
    component: Option<String>,
    version: Option<String>,
    system: &'static str,
    subscription: Option<String>,
    /// `messaging.destination.name` of the messaging metrics: the system's own name for the
    /// destination when it has one (RabbitMQ's, which takes the queue in), else the topic.
    destination_name: Option<String>,
    server_address: Option<String>,
    /// `server.port`, an int: the OpenTelemetry metrics add it themselves.
    pub(crate) server_port: Option<u16>,
    /// `messaging.operation.name` of `messaging.client.sent.messages`.
    pub(crate) send_operation: &'static str,
    /// `messaging.operation.type` of the send operation.
    send_type: &'static str,
    /// `messaging.operation.name` of `messaging.client.consumed.messages`.
    pub(crate) receive_operation: &'static str,
    /// `messaging.operation.name` of `messaging.process.duration`.
    pub(crate) process_operation: &'static str,
}

impl SiteLabels {
    pub(crate) fn new(
        destination: &Destination<'_>,
        component: Option<&str>,
        version: Option<&str>,
    ) -> Self {
        Self {
            topic: destination.topic.to_owned(),
            component: component.map(str::to_owned),
            version: version.map(str::to_owned),
            system: destination.system,
            subscription: destination.subscription.map(str::to_owned),
            destination_name: destination.current_name.map(str::to_owned),
            server_address: destination.server_address.map(str::to_owned),
            server_port: destination.server_port,
            send_operation: destination.conventions.operation(Operation::Send).1,
            send_type: destination.conventions.operation(Operation::Send).0,
            receive_operation: destination.conventions.operation(Operation::Receive).1,
            process_operation: destination.conventions.operation(Operation::Process).1,
        }
    }

    /// Whether this is a subscription's site (else a publisher's).
    pub(crate) fn is_consumer(&self) -> bool {
        self.subscription.is_some()
    }

    /// The operations `messaging.client.operation.duration` measures here.
    pub(crate) fn client_operations(&self) -> Vec<&'static str> {
        if self.is_consumer() {
            vec!["ack", "nack"]
        } else {
            vec![self.send_operation]
        }
    }

    /// `messaging.operation.type` of a client operation `messaging.client.operation.duration`
    /// measures: the send's, or `settle` for ack and nack.
    pub(crate) fn operation_type(&self, operation: &str) -> Option<&'static str> {
        match operation {
            "ack" | "nack" => Some("settle"),
            _ if operation == self.send_operation => Some(self.send_type),
            _ => None,
        }
    }

    /// The HyperFleet metrics' labels: `topic`, then `component` and `version` when known.
    pub(crate) fn broker(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some((names::TOPIC, self.topic.as_str())),
            self.component.as_deref().map(|c| (names::COMPONENT, c)),
            self.version.as_deref().map(|v| (names::VERSION, v)),
        ]
        .into_iter()
        .flatten()
    }

    /// The messaging attributes every OpenTelemetry messaging metric of this site carries.
    pub(crate) fn messaging(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some((MESSAGING_SYSTEM, self.system)),
            Some((
                MESSAGING_DESTINATION_NAME,
                self.destination_name.as_deref().unwrap_or(&self.topic),
            )),
            self.subscription
                .as_deref()
                .filter(|_| self.destination_name.is_none())
                .map(|s| (MESSAGING_DESTINATION_SUBSCRIPTION_NAME, s)),
            self.server_address.as_deref().map(|a| (SERVER_ADDRESS, a)),
        ]
        .into_iter()
        .flatten()
    }

    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    /// `component` and `version`, which every metric in the Prometheus exposition carries.
    pub(crate) fn service(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.broker().filter(|(k, _)| *k != names::TOPIC)
    }
}
