//! How messaging spans are named.

use std::collections::BTreeSet;
use std::sync::Mutex;

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

/// `name` as a `&'static str`, so that starting a span does not allocate its name.
///
/// Publishers and subscribers intern their span names when they are built. Each distinct name
/// is kept once for the life of the process: names are few (one per topic and operation), and
/// building the same publisher again reuses them.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = crate::sync::lock(&NAMES);
    if let Some(known) = names.get(name) {
        return known;
    }
    let kept: &'static str = Box::leak(name.into());
    names.insert(kept);
    kept
}
