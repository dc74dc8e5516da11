//! The `tracestate` field: the current key and value grammar, read across repeated fields and
//! written within the propagation limits.

use super::trim_ows;
use opentelemetry::trace::TraceState;

/// W3C limit on `tracestate` list members.
pub(crate) const MAX_MEMBERS: usize = 32;

/// Longest key and longest value the grammar allows.
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;

/// Longest `tracestate` written: the 512 characters the W3C asks every participant to pass
/// on, which also fits a binary-mode Pub/Sub attribute (1,024 bytes).
pub(crate) const MAX_WRITTEN_LEN: usize = 512;

/// Members longer than this go first when a written list must be truncated (W3C).
const LONG_MEMBER: usize = 128;

/// Longest input read: 32 members of the longest key and value, with generous whitespace.
/// Anything longer is discarded unread, which bounds the work per message.
pub(crate) const MAX_READ_LEN: usize = 2 * MAX_MEMBERS * (MAX_KEY_LEN + 1 + MAX_VALUE_LEN);

/// One `key=value` list member.
pub(crate) type Member<'a> = (&'a str, &'a str);

/// Members held inline before a list spills to the heap: lists are usually this short.
const INLINE: usize = 4;

/// Up to [`MAX_MEMBERS`] members, the first few inline: the message path reads and writes a
/// list per message, and a 32-slot array to clear each time costs more than the list.
pub(crate) struct Members<'a> {
    inline: [Member<'a>; INLINE],
    len: usize,
    /// All members once they outgrew `inline` (which is then unused).
    heap: Option<Vec<Member<'a>>>,
}

impl<'a> Members<'a> {
    pub(crate) fn new() -> Self {
        Self {
            inline: [("", ""); INLINE],
            len: 0,
            heap: None,
        }
    }

    pub(crate) fn push(&mut self, member: Member<'a>) {
        match &mut self.heap {
            Some(heap) => heap.push(member),
            None if self.len < INLINE => {
                self.inline[self.len] = member;
                self.len += 1;
            }
            None => {
                let mut heap = Vec::with_capacity(MAX_MEMBERS);
                heap.extend_from_slice(&self.inline[..self.len]);
                heap.push(member);
                self.heap = Some(heap);
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[Member<'a>] {
        match &self.heap {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }

    /// Removes the member at `index` (which must be below the length).
    fn remove(&mut self, index: usize) {
        match &mut self.heap {
            Some(heap) => {
                heap.remove(index);
            }
            None => {
                self.inline.copy_within(index + 1..self.len, index);
                self.len -= 1;
            }
        }
    }
}

/// Adds to `into` the non-empty members of the fields `values`, combined in order, or returns
/// `None` when the list must be discarded: an invalid member, more than 32 members, or an
/// input over [`MAX_READ_LEN`]. Later duplicates of a key are dropped (the left-most is the
/// most recent) but count towards the 32.
///
/// Nothing is allocated for lists of up to four members.
pub(crate) fn parse<'a>(values: &[&'a str], into: &mut Members<'a>) -> Option<()> {
    if values.iter().map(|v| v.len()).sum::<usize>() > MAX_READ_LEN {
        return None;
    }
    let mut count = 0;
    // Byte scans rather than `split` and `trim`, which are built for longer text: this runs
    // for every message received, usually on a list of one short member.
    for value in values {
        let mut rest: &str = value;
        loop {
            let len = rest.bytes().position(|b| b == b',').unwrap_or(rest.len());
            let text = trim_ows(rest.get(..len)?);
            if !text.is_empty() {
                let member = member(text)?;
                count += 1;
                if count > MAX_MEMBERS {
                    return None;
                }
                if !into.as_slice().iter().any(|earlier| earlier.0 == member.0) {
                    into.push(member);
                }
            }
            // Past the comma; nothing there once the last member is read.
            let Some(next) = rest.get(len + 1..) else {
                break;
            };
            rest = next;
        }
    }
    Some(())
}

/// A non-empty list member without the whitespace around it, `None` when it is invalid.
fn member(text: &str) -> Option<Member<'_>> {
    let equals = text.bytes().position(|b| b == b'=')?;
    let key = text.get(..equals)?;
    let value = text.get(equals + 1..)?;
    (is_key(key) && is_value(value)).then_some((key, value))
}

/// What a byte may be in a `tracestate` member, as bits of [`CLASSES`].
const KEY_FIRST: u8 = 1;
const KEY_CHAR: u8 = 2;
const VALUE_CHAR: u8 = 4;

/// The classes of every byte: one lookup a byte rather than a chain of comparisons.
static CLASSES: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte: u8 = 0x20;
    while byte <= 0x7e {
        let lower_or_digit = byte.is_ascii_lowercase() || byte.is_ascii_digit();
        let key_char = lower_or_digit || matches!(byte, b'_' | b'-' | b'*' | b'/' | b'@');
        let mut class = 0;
        if lower_or_digit {
            class |= KEY_FIRST;
        }
        if key_char {
            class |= KEY_CHAR;
        }
        if byte != b',' && byte != b'=' {
            class |= VALUE_CHAR;
        }
        table[byte as usize] = class;
        byte += 1;
    }
    table
};

/// Whether every byte of `bytes` is of `class`, without a branch per byte.
fn all_of(class: u8, bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(class, |all, &b| all & CLASSES[usize::from(b)])
        != 0
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
pub(crate) fn is_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|&b| CLASSES[usize::from(b)] & KEY_FIRST != 0);
    first_ok && bytes.len() <= MAX_KEY_LEN && all_of(KEY_CHAR, bytes)
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII except `,` and `=`, not ending in a space.
pub(crate) fn is_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_VALUE_LEN).contains(&bytes.len())
        && bytes.last() != Some(&b' ')
        && all_of(VALUE_CHAR, bytes)
}

/// Writes `members` as one field: at most 32, within [`MAX_WRITTEN_LEN`]. When the list is
/// too long, whole members go, those over 128 characters first, then from the right (W3C).
pub(crate) fn format<'a>(members: impl Iterator<Item = Member<'a>>) -> String {
    let mut kept = Members::new();
    for member in members.take(MAX_MEMBERS) {
        kept.push(member);
    }
    let len = |m: &Member<'_>| m.0.len() + 1 + m.1.len();
    let total =
        |kept: &[Member<'_>]| kept.iter().map(len).sum::<usize>() + kept.len().saturating_sub(1);
    while total(kept.as_slice()) > MAX_WRITTEN_LEN {
        let drop = kept
            .as_slice()
            .iter()
            .rposition(|m| len(m) > LONG_MEMBER)
            .unwrap_or(kept.as_slice().len() - 1);
        kept.remove(drop);
    }
    let kept = kept.as_slice();
    let mut out = String::with_capacity(total(kept));
    for (i, (key, value)) in kept.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The OpenTelemetry API's `TraceState` of `members`, and whether it holds all of them: the
/// API checks keys by an older grammar (it refuses `foo@@bar`), so the members it refuses are
/// left out of it.
pub(crate) fn to_trace_state(members: &[Member<'_>]) -> (TraceState, bool) {
    if let Ok(state) = TraceState::from_key_value(members.iter().copied()) {
        return (state, true);
    }
    let accepted = members
        .iter()
        .copied()
        .filter(|&(key, value)| TraceState::NONE.insert(key, value).is_ok());
    (
        TraceState::from_key_value(accepted).unwrap_or_default(),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&str]) -> Option<Vec<(String, String)>> {
        let mut members = Members::new();
        parse(values, &mut members)?;
        let pairs = members.as_slice().iter();
        Some(pairs.map(|&(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    #[test]
    fn keys_follow_the_current_grammar() {
        for key in ["foo", "0foo", "foo@@bar", "foo@bar@baz", "foo@", "a_-*/@z"] {
            assert!(is_key(key), "{key:?}");
        }
        assert!(is_key(&"z".repeat(256)));
        assert!(is_key(&format!("{}@{}", "t".repeat(241), "v".repeat(14))));
        for key in ["", "@foo", "Foo", "foo ", "foo.bar", "_foo", "fo=o", "föo"] {
            assert!(!is_key(key), "{key:?}");
        }
        assert!(!is_key(&"z".repeat(257)));
    }

    #[test]
    fn values_are_printable_ascii_without_comma_or_equals() {
        let all: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        for value in ["1", " leading", "a b", all.as_str()] {
            assert!(is_value(value), "{value:?}");
        }
        for value in ["", "trailing ", "a=b", "a,b", "tab\t", "é", "\u{7f}"] {
            assert!(!is_value(value), "{value:?}");
        }
        assert!(is_value(&"v".repeat(256)));
        assert!(!is_value(&"v".repeat(257)));
    }

    #[test]
    fn repeated_fields_combine_in_order_with_whitespace_and_empty_members() {
        assert_eq!(
            read(&["foo=1 \t , \t bar=2", "", ",, ", "\tbaz=3"]),
            pairs(&[("foo", "1"), ("bar", "2"), ("baz", "3")])
        );
        assert_eq!(read(&["foo= 1"]), pairs(&[("foo", " 1")]));
        assert_eq!(read(&[""]), pairs(&[]));
    }

    #[test]
    fn an_invalid_member_discards_the_list() {
        for bad in [
            "foo=",
            "foo=bar=baz",
            "foo",
            "=1",
            "FOO=1",
            "foo =1",
            "@foo=1,bar=2",
        ] {
            assert_eq!(read(&["ok=1", bad]), None, "{bad:?}");
        }
        assert_eq!(read(&["foo=1", &format!("{}=1", "z".repeat(257))]), None);
    }

    #[test]
    fn member_lists_keep_order_inline_and_once_spilled() {
        let names = ["a", "b", "c", "d", "e", "f"];
        for len in [3, 6] {
            let mut members = Members::new();
            for name in &names[..len] {
                members.push((name, "1"));
            }
            members.remove(1);
            let keys: Vec<&str> = members.as_slice().iter().map(|m| m.0).collect();
            let mut expected = names[..len].to_vec();
            expected.remove(1);
            assert_eq!(keys, expected);
            while !members.as_slice().is_empty() {
                members.remove(0);
            }
            members.push(("z", "1"));
            assert_eq!(members.as_slice(), [("z", "1")]);
        }
    }

    #[test]
    fn more_than_32_members_discard_the_list_and_duplicates_keep_the_first() {
        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        assert_eq!(read(&[&members[..32].join(",")]).map(|m| m.len()), Some(32));
        assert_eq!(
            read(&[&members[..30].join(","), &members[30..].join(",")]),
            None
        );
        assert_eq!(read(&["foo=1,foo=2", "foo=3"]), pairs(&[("foo", "1")]));
        let long = "x".repeat(MAX_READ_LEN);
        assert_eq!(read(&[&long]), None);
    }

    #[test]
    fn written_lists_keep_32_members_and_512_characters() {
        let members: Vec<String> = (1..=40).map(|i| format!("k{i}=v")).collect();
        let split: Vec<Member<'_>> = members.iter().map(|m| m.split_once('=').unwrap()).collect();
        let written = format(split.iter().copied());
        assert_eq!(written, members[..32].join(","));

        let long_value = "v".repeat(200);
        let short_value = "s".repeat(100);
        let mut list = vec![("a", short_value.as_str()), ("big", long_value.as_str())];
        list.extend([("b", short_value.as_str()), ("c", short_value.as_str())]);
        list.extend([("d", short_value.as_str()), ("e", short_value.as_str())]);
        let written = format(list.iter().copied());
        assert!(written.len() <= MAX_WRITTEN_LEN, "{}", written.len());
        assert!(
            !written.contains("big="),
            "members over 128 characters go first"
        );
        assert!(written.starts_with("a=") && written.contains(",d="));
        assert!(!written.contains(",e="), "then members from the right");
    }

    #[test]
    fn the_api_trace_state_holds_what_it_can() {
        let (state, complete) = to_trace_state(&[("foo", "1"), ("bar", "2")]);
        assert!(complete);
        assert_eq!(state.header(), "foo=1,bar=2");
        let (state, complete) = to_trace_state(&[("foo@@bar", "1"), ("bar", "2")]);
        assert!(!complete);
        assert_eq!(state.header(), "bar=2");
    }

    /// The ABNF read plainly, with regular expressions.
    fn plain_reading(values: &[&str]) -> Option<Vec<(String, String)>> {
        let member = regex::Regex::new(
            r"^([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])$",
        )
        .unwrap();
        let joined = values.join(",");
        let mut out: Vec<(String, String)> = Vec::new();
        let mut count = 0;
        for part in joined.split(',') {
            let part = part.trim_matches(|c| c == ' ' || c == '\t');
            if part.is_empty() {
                continue;
            }
            let captures = member.captures(part)?;
            count += 1;
            let key = captures[1].to_owned();
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, captures[2].to_owned()));
            }
        }
        (count <= MAX_MEMBERS).then_some(out)
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_reading(
            values in proptest::collection::vec("([ \t]{0,2}[a-cA@_0-9 .]{0,4}=?[a-c= ,\t~!]{0,4}[ \t]{0,2},?){0,5}", 1..4),
        ) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(read(&values), plain_reading(&values), "{:?}", values);
        }
    }
}
