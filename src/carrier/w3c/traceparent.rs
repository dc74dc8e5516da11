//! The `traceparent` field: its exact layout, read and written.

use super::trim_ows;
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
        read(value).map(|(_, parent)| parent)
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

/// The two lower-case hex digits of every byte.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    table
};

/// `bytes` as lower-case hex into `out`, two digits a byte.
fn put_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
}

/// The first four fields of `value` (optional whitespace around it removed) when it is a valid
/// `traceparent`, `None` otherwise.
///
/// Version `00` must be exactly 55 characters. A higher version (except the invalid `ff`) may
/// carry extra `-`-separated fields, which are cut off so that its first four fields are read.
pub(crate) fn valid_fields(value: &str) -> Option<&str> {
    read(value).map(|(fields, _)| fields)
}

/// The first four fields of a valid `traceparent` and what they say, in one pass: checking the
/// digits and decoding them is the same work, and this runs for every message received.
fn read(value: &str) -> Option<(&str, Traceparent)> {
    let value = trim_ows(value);
    let bytes = value.as_bytes();
    if bytes.len() < LEN || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let version = hex_byte(&bytes[0..2])?;
    let trace_id = hex_number(&bytes[3..35])?;
    let span_id = u64::try_from(hex_number(&bytes[36..52])?).ok()?;
    let flags = hex_byte(&bytes[53..55])?;
    let tail_ok = match version {
        0x00 => bytes.len() == LEN,
        0xff => false,
        _ => bytes.len() == LEN || bytes[LEN] == b'-',
    };
    // Every byte up to 55 is ASCII here, so slicing at 55 is on a char boundary.
    (tail_ok && trace_id != 0 && span_id != 0).then(|| {
        let parent = Traceparent {
            trace_id: TraceId::from(trace_id),
            span_id: SpanId::from(span_id),
            flags: TraceFlags::new(flags & KNOWN_FLAGS),
        };
        (&value[..LEN], parent)
    })
}

/// The number spelt by up to 32 lower-case hex digits, a multiple of 8, or `None` when one
/// is not such a digit.
fn hex_number(digits: &[u8]) -> Option<u128> {
    digits.chunks_exact(8).try_fold(0, |number, chunk| {
        let chunk = u64::from_be_bytes(chunk.try_into().ok()?);
        Some((number << 32) | u128::from(hex_word(chunk)?))
    })
}

/// The four bytes spelt by eight lower-case hex digits (most significant first, as read), or
/// `None` when one is not such a digit.
///
/// All eight at once in a `u64`, a few arithmetic steps in all rather than a table lookup
/// per digit.
fn hex_word(digits: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // For bytes below 0x80, adding `0x80 - n` sets a byte's high bit exactly when the byte is
    // at least `n`, and never carries into the next byte.
    let at_least = |n: u8| digits.wrapping_add(ONES * u64::from(0x80 - n));
    let decimal = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if (decimal | letter) & !digits & HIGH_BITS != HIGH_BITS {
        return None;
    }
    // A digit's value is its low four bits, plus 9 for a letter (which alone has bit 6 set).
    let nibbles = (digits & (ONES * 0x0f)) + ((digits >> 6) & ONES) * 9;
    // Pairs of nibbles into bytes, then pairs of bytes into 16-bit halves, and so on.
    let bytes = (nibbles | (nibbles >> 4)) & 0x00ff_00ff_00ff_00ff;
    let halves = (bytes | (bytes >> 8)) & 0x0000_ffff_0000_ffff;
    u32::try_from((halves | (halves >> 16)) & 0xffff_ffff).ok()
}

/// Marks a byte that is not a lower-case hex digit in [`HEX_VALUES`].
const NOT_HEX: u8 = 0x10;

/// The value of every byte as a lower-case hex digit, or [`NOT_HEX`].
static HEX_VALUES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        let ascii = if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        };
        table[ascii as usize] = digit;
        digit += 1;
    }
    table
};

/// The byte spelt by two lower-case hex digits, or `None` when one is not such a digit.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let high = HEX_VALUES[usize::from(pair[0])];
    let low = HEX_VALUES[usize::from(pair[1])];
    ((high | low) & NOT_HEX == 0).then_some((high << 4) | low)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    /// Reads eight digits one by one through the table.
    fn hex_word_by_table(digits: [u8; 8]) -> Option<u32> {
        digits.chunks_exact(2).try_fold(0, |word, pair| {
            Some((word << 8) | u32::from(hex_byte(pair)?))
        })
    }

    #[test]
    fn words_read_as_the_table_reads_each_digit() {
        let base = *b"0af76519";
        for position in 0..8 {
            for byte in 0..=255u8 {
                let mut digits = base;
                digits[position] = byte;
                assert_eq!(
                    hex_word(u64::from_be_bytes(digits)),
                    hex_word_by_table(digits),
                    "{digits:?}"
                );
            }
        }
        assert_eq!(hex_word(u64::from_be_bytes(*b"ffffffff")), Some(u32::MAX));
        assert_eq!(hex_word(u64::from_be_bytes(*b"00000000")), Some(0));
    }

    proptest::proptest! {
        #[test]
        fn any_eight_bytes_read_as_the_table_reads_them(digits: [u8; 8]) {
            proptest::prop_assert_eq!(hex_word(u64::from_be_bytes(digits)), hex_word_by_table(digits));
        }

        #[test]
        fn eight_digits_read_as_the_table_reads_them(digits in "[0-9a-f]{8}") {
            let digits: [u8; 8] = digits.as_bytes().try_into().unwrap();
            proptest::prop_assert_eq!(hex_word(u64::from_be_bytes(digits)), hex_word_by_table(digits));
        }
    }

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
