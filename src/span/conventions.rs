//! Which messaging semantic conventions the spans follow: the HyperFleet standard's (the
//! default), or the current OpenTelemetry messaging conventions (v1.44) as an opt-in through
//! `OTEL_SEMCONV_STABILITY_OPT_IN`, the way the OpenTelemetry specification asks instrumentations
//! to offer a migration.

/// The variable the opt-in is read from.
pub const OTEL_SEMCONV_STABILITY_OPT_IN: &str = "OTEL_SEMCONV_STABILITY_OPT_IN";

/// The messaging conventions spans (and the metrics' operation names) follow.
///
/// `HyperFleetOperationFirst` is `HyperFleet` with span names in the other order
/// (`publish {topic}`).
///
/// | | `HyperFleet` (default) | `Messaging` / `MessagingDup` |
/// |---|---|---|
/// | publish | `{topic} publish`, PRODUCER, operation `publish` | `send {topic}`, PRODUCER, operation `send` |
/// | batch | `{topic} create` + `{topic} publish` (CLIENT) | `create {topic}` + `send {topic}` (CLIENT) |
/// | receive | `{topic} receive`, CONSUMER | `receive {subscription}`, CLIENT |
/// | process | `adapter.process`, INTERNAL, operation `process` | `subscribe {subscription}`, CONSUMER, type `process`, name `subscribe` |
/// | settle | recorded on the receive span | also `ack {subscription}` / `nack {subscription}`, CLIENT, type `settle`, linked to the receive span |
/// | body size | – | `messaging.message.body.size` on send and receive |
///
/// `MessagingDup` emits what `Messaging` does: the specification asks for the new values of
/// span names, kinds and other single-valued concepts under `messaging/dup`, and every
/// attribute key of the HyperFleet standard is one the current conventions keep (with a new
/// value where they renamed an operation), so there is no old-only attribute left to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Conventions {
    /// The HyperFleet Tracing and Telemetry Standard's names, kinds and operations; span names
    /// `{destination} {operation}` (`hyperfleet-clusters publish`), as Google's client
    /// libraries and the semantic conventions up to v1.26 name them.
    #[default]
    HyperFleet,
    /// The HyperFleet standard's kinds and operations with span names in the order of the
    /// semantic conventions v1.27 and later: `{operation} {destination}`
    /// (`publish hyperfleet-clusters`, `receive hyperfleet-clusters`).
    HyperFleetOperationFirst,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN=messaging`: the current messaging conventions.
    Messaging,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup`: both, during a migration.
    MessagingDup,
}

impl Conventions {
    /// What `OTEL_SEMCONV_STABILITY_OPT_IN` asks for (unset: the HyperFleet standard's).
    pub fn from_env() -> Self {
        std::env::var(OTEL_SEMCONV_STABILITY_OPT_IN)
            .map(|value| Self::from_opt_in(&value))
            .unwrap_or_default()
    }

    /// What an `OTEL_SEMCONV_STABILITY_OPT_IN` value asks for: a comma-separated list of
    /// categories, where `messaging/dup` wins over `messaging` and other categories are
    /// someone else's.
    pub fn from_opt_in(value: &str) -> Self {
        let categories: Vec<&str> = value.split(',').map(str::trim).collect();
        if categories.contains(&"messaging/dup") {
            Self::MessagingDup
        } else if categories.contains(&"messaging") {
            Self::Messaging
        } else {
            Self::HyperFleet
        }
    }

    /// Whether spans follow the current messaging conventions.
    pub fn current(self) -> bool {
        matches!(self, Self::Messaging | Self::MessagingDup)
    }

    /// The name of a messaging span of `operation` on `topic` (and `subscription`, on the
    /// consumer side).
    pub(crate) fn span_name(
        self,
        operation: &str,
        topic: &str,
        subscription: Option<&str>,
    ) -> String {
        match self {
            Self::HyperFleet => format!("{topic} {operation}"),
            Self::HyperFleetOperationFirst => format!("{operation} {topic}"),
            Self::Messaging | Self::MessagingDup => {
                format!("{operation} {}", subscription.unwrap_or(topic))
            }
        }
    }

    /// `messaging.operation.type` and `.name` of `operation` (one of the standard's).
    pub(crate) fn operation(self, operation: Operation) -> (&'static str, &'static str) {
        match (self.current(), operation) {
            (false, Operation::Send) => ("publish", "publish"),
            (true, Operation::Send) => ("send", "send"),
            (_, Operation::Create) => ("create", "create"),
            (_, Operation::Receive) => ("receive", "receive"),
            (false, Operation::Process) => ("process", "process"),
            (true, Operation::Process) => ("process", "subscribe"),
            (_, Operation::Ack) => ("settle", "ack"),
            (_, Operation::Nack) => ("settle", "nack"),
        }
    }
}

impl Conventions {
    /// The name of the span event that records a failure of `operation`: the standard's
    /// `exception`, or the current conventions' `messaging.{operation type}.exception`.
    pub(crate) fn exception_event(self, operation: Operation) -> &'static str {
        match (self.current(), self.operation(operation).0) {
            (false, _) => "exception",
            (true, "create") => "messaging.create.exception",
            (true, "send") => "messaging.send.exception",
            (true, "receive") => "messaging.receive.exception",
            (true, "process") => "messaging.process.exception",
            (true, _) => "messaging.settle.exception",
        }
    }
}

/// A messaging operation, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Send,
    Create,
    Receive,
    Process,
    Ack,
    Nack,
}
