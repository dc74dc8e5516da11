//! Where a component's spans come from: its own SDK provider, or nowhere when tracing is
//! disabled. Spans are then not recorded, but each carries its parent's context on, so the
//! trace an upstream caller started still reaches every hop and every log line.

use opentelemetry::InstrumentationScope;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::TracerProvider;
use opentelemetry::trace::noop::NoopTracerProvider;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::SdkTracerProvider;

#[derive(Clone, Debug)]
pub enum Spans {
    /// Recorded by the component's provider.
    Recorded(SdkTracerProvider),
    /// Tracing is disabled.
    Off,
}

impl Spans {
    pub fn is_recorded(&self) -> bool {
        matches!(self, Self::Recorded(_))
    }

    /// Exports every span ended so far.
    pub fn force_flush(&self) -> OTelSdkResult {
        match self {
            Self::Recorded(provider) => provider.force_flush(),
            Self::Off => Ok(()),
        }
    }
}

impl TracerProvider for Spans {
    type Tracer = BoxedTracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> BoxedTracer {
        match self {
            Self::Recorded(provider) => {
                BoxedTracer::new(Box::new(provider.tracer_with_scope(scope)))
            }
            Self::Off => {
                BoxedTracer::new(Box::new(NoopTracerProvider::new().tracer_with_scope(scope)))
            }
        }
    }
}
