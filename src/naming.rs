//! How messaging spans are named.

/// Order of the parts of a messaging span name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanNaming {
    /// `{destination} {operation}`, e.g. `hyperfleet-clusters publish`: the HyperFleet standard's
    /// form, also used by Google's client libraries and semantic conventions up to v1.26.
    #[default]
    DestinationOperation,
    /// `{operation} {destination}`, e.g. `publish hyperfleet-clusters`: semantic conventions
    /// v1.27 and later.
    OperationDestination,
}

impl SpanNaming {
    /// The span name for `operation` on `destination`.
    pub fn name(self, destination: &str, operation: &str) -> String {
        match self {
            Self::DestinationOperation => format!("{destination} {operation}"),
            Self::OperationDestination => format!("{operation} {destination}"),
        }
    }
}
