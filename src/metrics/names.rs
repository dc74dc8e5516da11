//! What the metrics are called, what they are labelled with, and their buckets.

pub use opentelemetry_semantic_conventions::metric::{
    MESSAGING_CLIENT_CONSUMED_MESSAGES, MESSAGING_CLIENT_OPERATION_DURATION,
    MESSAGING_CLIENT_SENT_MESSAGES, MESSAGING_PROCESS_DURATION,
};

/// Messages published to the broker (counter).
pub const HYPERFLEET_BROKER_MESSAGES_PUBLISHED_TOTAL: &str =
    "hyperfleet_broker_messages_published_total";
/// Messages consumed from the broker, once per delivery (counter).
pub const HYPERFLEET_BROKER_MESSAGES_CONSUMED_TOTAL: &str =
    "hyperfleet_broker_messages_consumed_total";
/// Message processing errors by `error_type` (counter).
pub const HYPERFLEET_BROKER_ERRORS_TOTAL: &str = "hyperfleet_broker_errors_total";
/// The handler's processing time (histogram, seconds).
pub const HYPERFLEET_BROKER_MESSAGE_DURATION_SECONDS: &str =
    "hyperfleet_broker_message_duration_seconds";

/// Label of the HyperFleet metrics: the topic.
pub const TOPIC: &str = "topic";
/// Label of the HyperFleet metrics: `conversion`, `handler` or `publish`.
pub const ERROR_TYPE: &str = "error_type";
/// Label of every HyperFleet metric: the component (as its log lines name it).
pub const COMPONENT: &str = "component";
/// Label of every HyperFleet metric: the component's version.
pub const VERSION: &str = "version";

/// The HyperFleet metrics standard's buckets for event processing, in seconds.
pub const PROCESSING_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The semantic conventions' buckets for `messaging.*.duration`, in seconds.
pub const OPERATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// What failed, as `hyperfleet_broker_errors_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BrokerError {
    /// An event could not be encoded, or a message decoded.
    Conversion,
    /// The handler failed.
    Handler,
    /// The transport refused or failed a publish.
    Publish,
}

impl BrokerError {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Conversion => "conversion",
            Self::Handler => "handler",
            Self::Publish => "publish",
        }
    }
}
