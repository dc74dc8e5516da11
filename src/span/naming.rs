//! Span names kept for the life of the process, so that starting a span does not allocate
//! its name.

use std::collections::BTreeSet;
use std::sync::Mutex;

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
