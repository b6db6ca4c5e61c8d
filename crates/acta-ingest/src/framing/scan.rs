//! Incremental byte-level scanners used by the framer.
//!
//! Both scanners are resumable: they are fed whatever slice the reader's buffer
//! currently holds and keep their state between calls, so a value or a prefix
//! may straddle any number of buffer refills. Neither recurses: nesting is a
//! counter, so a million `[` cost a million increments and no stack.

use memchr::{memchr2, memchr3};

/// JSON's four whitespace bytes.
pub(crate) fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whitespace that may sit inside one line: JSON whitespace without `\n`.
pub(crate) fn is_line_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Bytes that can begin a JSON value. Anything else where a value is expected
/// is a structural error rather than a (flagged) record.
pub(crate) fn is_value_start(b: u8) -> bool {
    matches!(
        b,
        b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    )
}

/// Number of `\n` bytes in `bytes`.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Strings shorter than this are searched a word at a time; the rest of a
/// longer one with memchr's vector search.
const SHORT_STRING: usize = 64;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` equal to `byte` (exact for the lowest
/// such byte, which is all that is used).
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Index of the first `"` or `\\` (or `\n` if `bounded`) in `s`.
///
/// Log strings are mostly short: eight bytes per step without the set-up
/// cost of a vector search, which takes over for long strings.
fn find_string_special(s: &[u8], bounded: bool) -> Option<usize> {
    let near = s.get(..SHORT_STRING).unwrap_or(s);
    let mut words = near.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let mut hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if bounded {
            hits |= bytes_equal(word, b'\n');
        }
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let special = |&b: &u8| b == b'"' || b == b'\\' || (bounded && b == b'\n');
    if let Some(j) = words.remainder().iter().position(special) {
        return Some(at + j);
    }
    let far = s.get(near.len()..).unwrap_or_default();
    if bounded {
        memchr3(b'"', b'\\', b'\n', far)
    } else {
        memchr2(b'"', b'\\', far)
    }
    .map(|j| j + near.len())
}

/// Outcome of feeding a slice to a [`ValueScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Every byte of the slice belongs to the value, which is still open.
    More,
    /// The value ends after this many bytes of the slice.
    End(usize),
    /// Line-bounded scans only: a `\n` at this index ends the line before
    /// the value closed. The `\n` is not part of the value.
    Newline(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing consumed yet.
    Begin,
    /// Inside an object or array, outside any string.
    Compound,
    /// Inside a string.
    Str,
    /// Inside a string, right after a backslash.
    Escape,
    /// Inside a bare scalar (number, literal or garbage).
    Scalar,
}

/// Finds where one JSON value ends, tracking only depth, strings and escapes.
///
/// It does not validate: `{"a":[1}` is scanned until its brackets balance and
/// validation flags the record afterwards. This keeps the scan to a handful of
/// comparisons per byte, with string contents skipped by `memchr`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueScan {
    depth: u64,
    mode: Mode,
}

impl ValueScan {
    pub(crate) fn new() -> Self {
        Self {
            depth: 0,
            mode: Mode::Begin,
        }
    }

    /// Feeds the next bytes of the value. With `bounded`, a `\n` anywhere
    /// (even inside a string) stops the scan: used for envelopes that must fit
    /// on one NDJSON line.
    pub(crate) fn scan(&mut self, buf: &[u8], bounded: bool) -> Scan {
        let mut i = 0usize;
        loop {
            let rest = buf.get(i..).unwrap_or_default();
            match self.mode {
                Mode::Begin => {
                    let Some(&b) = rest.first() else {
                        return Scan::More;
                    };
                    if bounded && b == b'\n' {
                        return Scan::Newline(i);
                    }
                    i += 1;
                    self.mode = match b {
                        b'{' | b'[' => {
                            self.depth = 1;
                            Mode::Compound
                        }
                        b'"' => Mode::Str,
                        _ => Mode::Scalar,
                    };
                }
                Mode::Str => {
                    let hit = find_string_special(rest, bounded);
                    let Some(j) = hit else {
                        return Scan::More;
                    };
                    match rest.get(j) {
                        Some(b'\\') => {
                            i += j + 1;
                            self.mode = Mode::Escape;
                        }
                        Some(b'\n') => return Scan::Newline(i + j),
                        _ => {
                            i += j + 1;
                            if self.depth == 0 {
                                return Scan::End(i);
                            }
                            self.mode = Mode::Compound;
                        }
                    }
                }
                Mode::Escape => {
                    let Some(&b) = rest.first() else {
                        return Scan::More;
                    };
                    if bounded && b == b'\n' {
                        return Scan::Newline(i);
                    }
                    i += 1;
                    self.mode = Mode::Str;
                }
                Mode::Compound => {
                    let hit = rest.iter().position(|&b| {
                        matches!(b, b'"' | b'{' | b'[' | b'}' | b']') || (bounded && b == b'\n')
                    });
                    let Some(j) = hit else {
                        return Scan::More;
                    };
                    match rest.get(j) {
                        Some(b'"') => self.mode = Mode::Str,
                        Some(b'{' | b'[') => self.depth = self.depth.saturating_add(1),
                        Some(b'}' | b']') => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Scan::End(i + j + 1);
                            }
                        }
                        _ => return Scan::Newline(i + j),
                    }
                    i += j + 1;
                }
                Mode::Scalar => {
                    let end = rest.iter().position(|&b| {
                        is_json_ws(b) || matches!(b, b',' | b':' | b'"' | b'{' | b'}' | b'[' | b']')
                    });
                    return match end {
                        Some(j) => Scan::End(i + j),
                        None => Scan::More,
                    };
                }
            }
        }
    }
}

/// Outcome of feeding a slice to an [`EnvelopeMatcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The envelope start ends after this many bytes of the slice (its `[`
    /// included).
    Matched(usize),
    /// The bytes seen are not an envelope start. The failing byte is not
    /// consumed.
    Failed,
    /// Every byte of the slice is a plausible continuation.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvState {
    Lead,
    Brace,
    Key(usize),
    AfterKey,
    Colon,
}

const RECORDS_KEY: &[u8] = b"\"Records\"";

/// Longest envelope start recognised, whitespace included. Bounds what is held
/// while undecided, independently of the record size limit so that the
/// verdict never depends on how the input is split into reads.
pub(crate) const MAX_ENVELOPE_PREFIX: usize = 4096;

/// Recognises `{` ws* `"Records"` ws* `:` ws* `[`, the start of a
/// CloudTrail-style envelope, one byte at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvelopeMatcher {
    state: EnvState,
    /// Bytes matched so far.
    seen: usize,
    /// Whitespace may precede the `{` (NDJSON lines may be indented).
    lead: bool,
    /// `\n` counts as whitespace (whole-input detection) rather than ending
    /// the candidate (line mode).
    newline_is_ws: bool,
}

impl EnvelopeMatcher {
    /// For the start of a whole input, positioned on its `{`.
    pub(crate) fn top() -> Self {
        Self {
            state: EnvState::Lead,
            seen: 0,
            lead: false,
            newline_is_ws: true,
        }
    }

    /// For the start of one NDJSON line.
    pub(crate) fn line() -> Self {
        Self {
            state: EnvState::Lead,
            seen: 0,
            lead: true,
            newline_is_ws: false,
        }
    }

    pub(crate) fn feed(&mut self, buf: &[u8]) -> Match {
        for (i, &b) in buf.iter().enumerate() {
            self.seen += 1;
            if self.seen > MAX_ENVELOPE_PREFIX {
                return Match::Failed;
            }
            let ws = is_line_ws(b) || (self.newline_is_ws && b == b'\n');
            self.state = match self.state {
                EnvState::Lead if ws && self.lead => EnvState::Lead,
                EnvState::Lead if b == b'{' => EnvState::Brace,
                EnvState::Brace if ws => EnvState::Brace,
                EnvState::Brace if b == b'"' => EnvState::Key(1),
                EnvState::Key(k) if RECORDS_KEY.get(k) == Some(&b) => {
                    if k + 1 == RECORDS_KEY.len() {
                        EnvState::AfterKey
                    } else {
                        EnvState::Key(k + 1)
                    }
                }
                EnvState::AfterKey if ws => EnvState::AfterKey,
                EnvState::AfterKey if b == b':' => EnvState::Colon,
                EnvState::Colon if ws => EnvState::Colon,
                EnvState::Colon if b == b'[' => return Match::Matched(i + 1),
                _ => return Match::Failed,
            };
        }
        Match::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8], bounded: bool) -> Scan {
        let mut s = ValueScan::new();
        s.scan(input, bounded)
    }

    #[test]
    fn scans_compound_values_with_strings_and_escapes() {
        assert_eq!(scan_all(br#"{"a":"}\"]"} tail"#, false), Scan::End(12));
        assert_eq!(scan_all(br#"[1,[2,[3]]],"#, false), Scan::End(11));
        assert_eq!(scan_all(br#""x\"y" "#, false), Scan::End(6));
        assert_eq!(scan_all(b"123,", false), Scan::End(3));
        assert_eq!(scan_all(b"true]", false), Scan::End(4));
        assert_eq!(scan_all(b"{\"a\":\n1}", false), Scan::End(8));
        assert_eq!(scan_all(b"{\"a\":\n1}", true), Scan::Newline(5));
        assert_eq!(scan_all(b"{\"a\n\":1}", true), Scan::Newline(3));
    }

    #[test]
    fn scan_resumes_at_every_split_point() {
        let input = br#"{"k":["a\\\"b",{"c":null}],"d":"]"}"#;
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let mut s = ValueScan::new();
            let got = match s.scan(a, false) {
                Scan::End(n) => n,
                _ => match s.scan(b, false) {
                    Scan::End(n) => a.len() + n,
                    other => panic!("split {split}: {other:?}"),
                },
            };
            assert_eq!(got, input.len(), "split {split}");
        }
    }

    #[test]
    fn string_special_search_agrees_with_a_plain_loop() {
        let alphabet = [
            b'a',
            b'"',
            b'\\',
            b'\n',
            0x80,
            0xff,
            b'!',
            b'#',
            0x00,
            0x22 ^ 0x80,
        ];
        let mut state = 12345u64;
        for len in 0..200 {
            for _ in 0..50 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let r = (state >> 33) as usize;
                        // Mostly plain bytes, so that hits land anywhere.
                        if r.is_multiple_of(16) {
                            alphabet[(r / 16) % alphabet.len()]
                        } else {
                            b'a' + (r % 26) as u8
                        }
                    })
                    .collect();
                for bounded in [false, true] {
                    let expected = s
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || (bounded && b == b'\n'));
                    assert_eq!(
                        find_string_special(&s, bounded),
                        expected,
                        "{s:?} {bounded}"
                    );
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_a_counter() {
        let mut input = vec![b'['; 1_000_000];
        input.extend(std::iter::repeat_n(b']', 1_000_000));
        assert_eq!(scan_all(&input, false), Scan::End(2_000_000));
    }

    #[test]
    fn envelope_matcher() {
        let mut m = EnvelopeMatcher::top();
        assert_eq!(m.feed(b"{ \"Records\" :\n [{"), Match::Matched(16));
        let mut m = EnvelopeMatcher::top();
        assert_eq!(m.feed(b"{\"Recor"), Match::NeedMore);
        assert_eq!(m.feed(b"ds\":[]"), Match::Matched(5));
        let mut m = EnvelopeMatcher::top();
        assert_eq!(m.feed(b"{\"Records\":5"), Match::Failed);
        let mut m = EnvelopeMatcher::line();
        assert_eq!(m.feed(b"  {\"Records\":\n["), Match::Failed);
        let mut m = EnvelopeMatcher::line();
        assert_eq!(m.feed(b"\t{\"Records\": ["), Match::Matched(14));
        let mut m = EnvelopeMatcher::top();
        assert_eq!(m.feed(b" {\"Records\":["), Match::Failed);
        let mut long = b"{\"Records\":".to_vec();
        long.resize(MAX_ENVELOPE_PREFIX - 1, b' ');
        long.push(b'[');
        assert_eq!(
            EnvelopeMatcher::top().feed(&long),
            Match::Matched(MAX_ENVELOPE_PREFIX)
        );
        long.insert(12, b' ');
        assert_eq!(EnvelopeMatcher::top().feed(&long), Match::Failed);
    }
}
