//! Strict checks on trace-context values read from an event.
//!
//! The SDK's `TraceContextPropagator` checks hex digits and values but not field lengths, so it
//! accepts some values the W3C format forbids. We check the layout ourselves before handing a
//! value to any propagator.

/// Length of a version-00 `traceparent`: `vv-<32 hex>-<16 hex>-ff`.
const TRACEPARENT_LEN: usize = 55;

/// W3C limit on `tracestate` list members.
pub(crate) const TRACESTATE_MAX_MEMBERS: usize = 32;

/// Characters of `tracestate` every participant must propagate; longer values may be dropped.
pub(crate) const TRACESTATE_MAX_LEN: usize = 512;

/// Longest `baggage` read: what can be sent on again as a binary-mode Pub/Sub attribute
/// (`ce-baggage`, at most 1,024 bytes), below W3C Baggage's own 8,192.
pub(crate) const BAGGAGE_MAX_LEN: usize = 1024;

/// The part of `value` a propagator may read for the context field `key`, or `None` when it
/// must be ignored: `traceparent` in the exact W3C layout, `tracestate` within the W3C limits,
/// `baggage` within W3C Baggage's. Other keys pass as they are.
pub(super) fn checked<'v>(key: &str, value: &'v str) -> Option<&'v str> {
    match key {
        super::TRACEPARENT => traceparent(value),
        super::TRACESTATE => tracestate(value),
        super::BAGGAGE => (value.len() <= BAGGAGE_MAX_LEN).then_some(value),
        _ => Some(value),
    }
}

/// Returns the part of `value` a propagator should parse, or `None` when it is not a valid
/// W3C `traceparent`.
///
/// Version `00` must be exactly 55 characters. A higher version (except the invalid `ff`) may
/// carry extra `-`-separated fields, which are cut off so that its first four fields are parsed.
pub(crate) fn traceparent(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    if bytes.len() < TRACEPARENT_LEN {
        return None;
    }
    let version = &bytes[0..2];
    let trace_id = &bytes[3..35];
    let span_id = &bytes[36..52];
    let flags = &bytes[53..55];
    let separators_ok = bytes[2] == b'-' && bytes[35] == b'-' && bytes[52] == b'-';
    // Non-short-circuiting `&` lets the byte checks run without a branch per byte: this runs
    // for every message received.
    let fields_ok = is_lower_hex(version)
        & is_lower_hex(trace_id)
        & is_lower_hex(span_id)
        & is_lower_hex(flags)
        & !is_all_zero(trace_id)
        & !is_all_zero(span_id);
    if !separators_ok || !fields_ok || version == b"ff" {
        return None;
    }
    let tail_ok = if version == b"00" {
        bytes.len() == TRACEPARENT_LEN
    } else {
        bytes.len() == TRACEPARENT_LEN || bytes[TRACEPARENT_LEN] == b'-'
    };
    // Every byte up to 55 is ASCII here, so slicing at 55 is on a char boundary.
    tail_ok.then(|| &value[..TRACEPARENT_LEN])
}

/// Returns `value` when it is a `tracestate` within the W3C limits, `None` when it must be
/// discarded (the W3C spec allows dropping a list that is over its limits).
pub(crate) fn tracestate(value: &str) -> Option<&str> {
    if value.len() > TRACESTATE_MAX_LEN {
        return None;
    }
    // List members are separated by commas; empty ones (only spaces and tabs, the W3C's
    // optional whitespace) do not count. Anything else is left to the propagator's parser.
    let (mut members, mut in_member) = (0, false);
    for &b in value.as_bytes() {
        match b {
            b',' => {
                members += usize::from(in_member);
                in_member = false;
            }
            b' ' | b'\t' => {}
            _ => in_member = true,
        }
    }
    members += usize::from(in_member);
    (1..=TRACESTATE_MAX_MEMBERS)
        .contains(&members)
        .then_some(value)
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6))
    })
}

fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0, |differs, &b| differs | (b ^ b'0')) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn accepts_valid_values_and_unknown_flags() {
        assert_eq!(traceparent(VALID), Some(VALID));
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(traceparent(unsampled), Some(unsampled));
        let flags03 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        assert_eq!(traceparent(flags03), Some(flags03));
    }

    #[test]
    fn higher_versions_are_read_by_their_first_four_fields() {
        let v = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds";
        assert_eq!(
            traceparent(v),
            Some("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        let glued = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x";
        assert_eq!(traceparent(glued), None);
    }

    #[test]
    fn rejects_invalid_layouts() {
        for bad in [
            "",
            "0000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c00-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333100-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0100",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0é",
        ] {
            assert_eq!(traceparent(bad), None, "{bad:?} must be rejected");
        }
    }

    #[test]
    fn tracestate_limits() {
        assert_eq!(tracestate("a=1,b=2"), Some("a=1,b=2"));
        assert_eq!(tracestate(""), None);
        assert_eq!(tracestate(" ,\t, "), None);
        assert_eq!(tracestate(" a=1 ,, b=2 "), Some(" a=1 ,, b=2 "));
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tracestate(&members.join(",")), None);
        assert!(tracestate(&members[..32].join(",")).is_some());
        let long = format!("k={}", "v".repeat(TRACESTATE_MAX_LEN));
        assert_eq!(tracestate(&long), None);
    }

    /// The W3C layout, written plainly: the fast check must agree with it.
    fn traceparent_reference(value: &str) -> Option<&str> {
        let fields: Vec<&str> = value.splitn(5, '-').collect();
        let hex = |f: &str, len: usize| {
            f.len() == len
                && f.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let [version, trace_id, span_id, flags, rest @ ..] = fields.as_slice() else {
            return None;
        };
        let ok = hex(version, 2)
            && *version != "ff"
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(span_id, 16)
            && span_id.bytes().any(|b| b != b'0')
            && hex(flags, 2)
            && (rest.is_empty() || *version != "00");
        ok.then(|| &value[..TRACEPARENT_LEN])
    }

    proptest::proptest! {
        #[test]
        fn traceparent_agrees_with_the_plain_reading(
            value in "(00|01|cc|ff|0g)-[0-9a-fA-F]{31,33}-[0-9a-f]{15,17}-[0-9a-f]{2}(-[a-z]{0,3})?",
            zero_trace in proptest::bool::weighted(0.1),
            zero_span in proptest::bool::weighted(0.1),
        ) {
            let mut value = value;
            if zero_trace && value.len() >= 35 {
                value.replace_range(3..35, &"0".repeat(32));
            }
            if zero_span && value.len() >= 52 {
                value.replace_range(36..52, &"0".repeat(16));
            }
            proptest::prop_assert_eq!(traceparent(&value), traceparent_reference(&value), "{}", value);
        }
    }
}
