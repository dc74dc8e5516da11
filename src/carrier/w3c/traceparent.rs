//! The `traceparent` field: its exact layout, read and written.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

/// Length of the four fields every version shares: `vv-<32 hex>-<16 hex>-ff`.
const LEN: usize = 55;

/// The Level 2 `random` flag: the trace id's right-most 7 bytes are random.
pub(crate) const RANDOM: TraceFlags = TraceFlags::new(0x02);

/// The flags this version defines (`sampled`, `random`); others are zeroed when written.
const KNOWN_FLAGS: u8 = 0x03;

/// A `traceparent` read from a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traceparent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    /// The flags this version defines; unknown ones are dropped as the processing model asks.
    pub(crate) flags: TraceFlags,
}

impl Traceparent {
    /// Reads `value`, or `None` when it is not a valid `traceparent`.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let fields = valid_fields(value)?.as_bytes();
        Some(Self {
            trace_id: TraceId::from_bytes(hex_bytes(&fields[3..35])),
            span_id: SpanId::from_bytes(hex_bytes(&fields[36..52])),
            flags: TraceFlags::new(hex_bytes::<1>(&fields[53..55])[0] & KNOWN_FLAGS),
        })
    }
}

/// Writes a version-00 `traceparent`, keeping the `sampled` and `random` flags.
pub(crate) fn format(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    // By table into bytes, not through `fmt` or `char` pushes: this runs for every message
    // sent, and `fmt`'s padded hex of a `u128` costs more than the rest of the injection.
    let mut out = [b'-'; LEN];
    out[..2].copy_from_slice(b"00");
    put_hex(&mut out[3..35], &trace_id.to_bytes());
    put_hex(&mut out[36..52], &span_id.to_bytes());
    put_hex(&mut out[53..55], &[flags.to_u8() & KNOWN_FLAGS]);
    // Hex digits and dashes only: always text.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// `bytes` as lower-case hex into `out`, two digits a byte.
fn put_hex(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// The first four fields of `value` (optional whitespace around it removed) when it is a valid
/// `traceparent`, `None` otherwise.
///
/// Version `00` must be exactly 55 characters. A higher version (except the invalid `ff`) may
/// carry extra `-`-separated fields, which are cut off so that its first four fields are read.
pub(crate) fn valid_fields(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    if bytes.len() < LEN {
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
        bytes.len() == LEN
    } else {
        bytes.len() == LEN || bytes[LEN] == b'-'
    };
    // Every byte up to 55 is ASCII here, so slicing at 55 is on a char boundary.
    tail_ok.then(|| &value[..LEN])
}

fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6))
    })
}

fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0, |differs, &b| differs | (b ^ b'0')) == 0
}

/// `N` bytes from `2 * N` lower-case hex digits, already checked.
fn hex_bytes<const N: usize>(digits: &[u8]) -> [u8; N] {
    let nibble = |d: u8| if d <= b'9' { d - b'0' } else { d - b'a' + 10 };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn reads_ids_and_the_known_flags() {
        let parsed = Traceparent::parse(VALID).expect("valid");
        assert_eq!(
            parsed.trace_id,
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
        );
        assert_eq!(
            parsed.span_id,
            SpanId::from_hex("b7ad6b7169203331").unwrap()
        );
        assert_eq!(parsed.flags, TraceFlags::SAMPLED);
        let all = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff";
        assert_eq!(Traceparent::parse(all).unwrap().flags.to_u8(), 0x03);
        let random = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02";
        assert_eq!(Traceparent::parse(random).unwrap().flags, RANDOM);
    }

    #[test]
    fn writes_version_00_with_sampled_and_random() {
        let parsed = Traceparent::parse(VALID).unwrap();
        assert_eq!(
            format(parsed.trace_id, parsed.span_id, TraceFlags::new(0xff)),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"
        );
        assert_eq!(
            format(parsed.trace_id, parsed.span_id, TraceFlags::SAMPLED),
            VALID
        );
    }

    #[test]
    fn accepts_valid_values_and_unknown_flags() {
        assert_eq!(valid_fields(VALID), Some(VALID));
        assert_eq!(valid_fields(&format!(" \t{VALID}\t ")), Some(VALID));
        let flags03 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        assert_eq!(valid_fields(flags03), Some(flags03));
    }

    #[test]
    fn higher_versions_are_read_by_their_first_four_fields() {
        let v = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds";
        assert_eq!(
            valid_fields(v),
            Some("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        let glued = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x";
        assert_eq!(valid_fields(glued), None);
    }

    #[test]
    fn rejects_invalid_layouts() {
        for bad in [
            "",
            "0000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c00-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333100-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0100",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-001",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0é",
            "\n00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(valid_fields(bad), None, "{bad:?} must be rejected");
            assert_eq!(Traceparent::parse(bad), None, "{bad:?} must be rejected");
        }
    }

    /// The W3C ABNF, written plainly: the fast check must agree with it.
    fn plain_reading(value: &str) -> Option<&str> {
        let value = value.trim_matches([' ', '\t']);
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
        ok.then(|| &value[..LEN])
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_reading(
            value in "[ \t]{0,2}(00|01|cc|ff|0g|0|000)-[0-9a-fA-F]{31,33}-[0-9a-f]{15,17}-[0-9a-f]{1,3}(-[a-z]{0,3}|\\.)?[ \t]{0,2}",
            zero_trace in proptest::bool::weighted(0.1),
            zero_span in proptest::bool::weighted(0.1),
        ) {
            let mut value = value;
            let start = value.len() - value.trim_start_matches([' ', '\t']).len();
            if zero_trace && value.len() >= start + 35 {
                value.replace_range(start + 3..start + 35, &"0".repeat(32));
            }
            if zero_span && value.len() >= start + 52 {
                value.replace_range(start + 36..start + 52, &"0".repeat(16));
            }
            proptest::prop_assert_eq!(valid_fields(&value), plain_reading(&value), "{:?}", value);
            if let Some(fields) = plain_reading(&value) {
                let parsed = Traceparent::parse(&value).expect("valid");
                proptest::prop_assert_eq!(parsed.trace_id, TraceId::from_hex(&fields[3..35]).unwrap());
                proptest::prop_assert_eq!(parsed.span_id, SpanId::from_hex(&fields[36..52]).unwrap());
            }
        }
    }
}
