//! What the pipeline hands back: the verdict to settle, and the receive span that the
//! settlement is recorded on.

use super::spans::SettleSpans;
use crate::metrics::{Measurement, PipelineMetrics, Timed};
use crate::span::record_failure;
use crate::transport::{Acknowledger, TransportError};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::Instant;

/// Whether a delivery should be acked or nacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handled (or failed under [`AckPolicy::AlwaysAck`](crate::settings::AckPolicy::AlwaysAck)).
    Ack,
    /// Not handled: redeliver it, or let a dead-letter policy take it.
    Nack,
}

/// One consumed delivery, still to be settled. Its receive span stays open until then, so a
/// failed settlement is recorded on it.
pub(crate) struct Consumed {
    verdict: Verdict,
    receive: Context,
    settlement: Settlement,
}

/// What a settlement through an acknowledger records besides the receive span.
pub(super) struct Settlement {
    /// The `ack` / `nack` spans, under the current conventions.
    pub(super) spans: Option<Arc<SettleSpans>>,
    /// The attributes naming the delivery, for those spans.
    pub(super) named_by: Vec<KeyValue>,
    /// The name of the event that records a failed settlement.
    pub(super) exception_event: &'static str,
    /// `None` when nothing is recorded.
    pub(super) metrics: Option<Arc<PipelineMetrics>>,
}

impl Consumed {
    pub(super) fn new(verdict: Verdict, receive: Context, settlement: Settlement) -> Self {
        Self {
            verdict,
            receive,
            settlement,
        }
    }

    /// Ack or nack.
    pub(crate) fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Settles through `acker` as the verdict says.
    pub(crate) async fn settle(self, acker: Box<dyn Acknowledger>) {
        let ack = self.verdict == Verdict::Ack;
        let span = self
            .settlement
            .spans
            .as_ref()
            .map(|spans| spans.start(ack, &self.receive, &self.settlement.named_by));
        let started = self.settlement.metrics.is_some().then(Instant::now);
        let (operation, result) = match ack {
            true => ("ack", acker.ack().await),
            false => ("nack", acker.nack().await),
        };
        let error_type = result.as_ref().err().map(|e| e.code().as_str());
        if let Some(cx) = &span {
            let span = cx.span();
            if let Err(error) = &result {
                record_failure(
                    &span,
                    self.settlement.exception_event,
                    error.code().as_str(),
                    error,
                );
            }
            span.end();
        }
        if let (Some(metrics), Some(started)) = (&self.settlement.metrics, started) {
            let measured = span.as_ref().unwrap_or(&self.receive);
            metrics.record(Measurement::Operation(Timed {
                operation,
                elapsed: started.elapsed(),
                error_type,
                span: measured.span().span_context(),
            }));
        }
        self.settled(result);
    }

    /// Records how the settlement went and ends the receive span.
    pub(crate) fn settled(self, result: Result<(), TransportError>) {
        let span = self.receive.span();
        if let Err(error) = result {
            let event = self.settlement.exception_event;
            record_failure(&span, event, error.code().as_str(), &error);
        }
        span.end();
    }
}
