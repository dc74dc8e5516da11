//! The CloudEvents naming rules that the carrier and the binding both follow.

use std::borrow::Cow;

/// Names of the context attributes (1.0 and 0.3) and of the data members. No extension may
/// take one: it would collide with the attribute in either encoding.
pub const CONTEXT_ATTRIBUTE_NAMES: [&str; 12] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "schemaurl",
    "datacontentencoding",
    "data_base64",
];

/// Longest extension attribute name the CloudEvents specification allows.
const MAX_EXTENSION_NAME_LEN: usize = 20;

/// CloudEvents extension attribute names: lower-case `a`–`z` and `0`–`9`, at most 20
/// characters, and not the name of a context attribute.
pub(crate) fn is_extension_name(name: &str) -> bool {
    // Nearly every event carries these: spare them the general check.
    if matches!(name, "traceparent" | "tracestate" | "baggage") {
        return true;
    }
    (1..=MAX_EXTENSION_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !CONTEXT_ATTRIBUTE_NAMES.contains(&name)
}

/// `name` in lower case, allocating only when it has upper-case letters (propagators ask for
/// lower-case keys and brokers mostly deliver lower-case attribute names, so it rarely does).
pub(crate) fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_names_are_borrowed_others_lowered() {
        assert!(matches!(
            lowercase("ce-traceparent"),
            Cow::Borrowed("ce-traceparent")
        ));
        assert_eq!(lowercase("Ce-TraceParent"), "ce-traceparent");
        assert!(matches!(lowercase("Ce-Id"), Cow::Owned(_)));
    }

    #[test]
    fn extension_names() {
        assert!(is_extension_name("traceparent"));
        assert!(is_extension_name("tracestate") && is_extension_name("baggage"));
        assert!(is_extension_name("a1"));
        assert!(!is_extension_name(""));
        assert!(!is_extension_name("TraceParent"));
        assert!(!is_extension_name("uber-trace-id"));
        assert!(!is_extension_name("abcdefghijklmnopqrstu"));
        assert!(!is_extension_name("id"));
        assert!(!is_extension_name("datacontenttype"));
    }
}
